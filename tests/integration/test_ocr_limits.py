"""The limits the OCR sandbox promises, and the parallelism the workers promise (real tesseract)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from channels.letters.intake import LetterFile, LetterUpload, accept_letter
from channels.letters.queue import LetterQueue
from channels.letters.worker import run_ocr_workers
from gateway.services import Services
from normalizer.ocr import OcrFailed, ScanLimits, run_ocr
from normalizer.ocr.job import ScanFile
from normalizer.ocr.sandbox import Limits, SandboxError, run_limited
from tests.peers import scans
from tests.peers.processes import wait_until


def test_program_over_its_memory_cap_fails_with_the_memory_reason() -> None:
    grab = "bytearray(300 * 1024 * 1024)"
    with pytest.raises(SandboxError) as caught:
        run_limited([sys.executable, "-c", grab], Limits(timeout=30, memory_mb=150))
    assert caught.value.code == "memory"
    assert run_limited([sys.executable, "-c", grab], Limits(timeout=30, memory_mb=1024)) == b""


def _page_file(tmp_path: Path) -> ScanFile:
    path = tmp_path / "lettre.png"
    path.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER), "png"))
    return ScanFile(path, "png", 1)


def test_ocr_job_given_too_little_memory_fails_with_the_memory_reason(tmp_path: Path) -> None:
    with pytest.raises(OcrFailed) as caught:
        run_ocr([_page_file(tmp_path)], ScanLimits(memory_mb=60))
    assert caught.value.code == "memory"
    assert not caught.value.internal


def test_ocr_job_with_the_default_memory_reads_the_page(tmp_path: Path) -> None:
    result = run_ocr([_page_file(tmp_path)], ScanLimits())
    assert "Casablanca" in result.text


def _long_letter(seed: int) -> LetterUpload:
    pages = [
        scans.render_page(scans.FRENCH_LETTER, angle=1.0, seed=seed + index) for index in range(3)
    ]
    return LetterUpload(files=[LetterFile("l.tif", scans.multipage_tiff(pages))], source="api")


def test_two_ocr_workers_read_two_letters_at_the_same_time(services: Services) -> None:
    ids = [accept_letter(services, _long_letter(seed)).letter_id for seed in (10, 20)]
    queue = LetterQueue(services.store.engine)
    stop = threading.Event()
    workers = threading.Thread(target=run_ocr_workers, args=(services, stop, 2), daemon=True)
    workers.start()
    try:
        statuses = lambda: [queue.get(letter_id).status for letter_id in ids]  # noqa: E731
        wait_until(lambda: statuses() == ["running", "running"], "both letters read at once")
        wait_until(lambda: statuses() == ["done", "done"], "both letters read", timeout=180)
    finally:
        stop.set()
        workers.join(timeout=60)
