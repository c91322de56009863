"""OCR in tests: a worker (``channels.letters.worker.work``) in a thread for as long as a
block runs, and a stand-in ``tesseract`` whose speed the test sets."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from channels.letters.worker import work
from gateway.lib.services import Services
from tests.peers import scans


@contextmanager
def ocr_worker(services: Services) -> Iterator[threading.Thread]:
    """Start one worker; at the end of the block, stop it and wait for it (60 s at most)."""
    stop = threading.Event()
    thread = threading.Thread(target=work, args=(services, stop), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=60)


STAND_IN_TEXT = "\n".join(scans.FRENCH_LETTER)


def stand_in_tesseract(folder: Path, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``tesseract`` first on PATH (the OCR job and its children inherit it) whose
    recognition takes ``seconds`` and reads ``STAND_IN_TEXT``; its OSD answers at once.

    The time a page takes is then set by the test, not by this machine's speed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reading.txt").write_text(STAND_IN_TEXT, encoding="utf-8")
    (folder / "reading.tsv").write_text("conf\ttext\n95\tCasablanca\n", encoding="utf-8")
    script = folder / "tesseract"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in\n'
        '  *" --psm 0 "*) printf "Rotate: 0\\nScript: Latin\\nScript confidence: 20\\n"; exit 0;;\n'
        "esac\n"
        f"sleep {seconds}\n"
        f'cp "{folder}/reading.txt" "$2.txt" && cp "{folder}/reading.tsv" "$2.tsv"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
