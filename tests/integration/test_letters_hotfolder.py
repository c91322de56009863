"""The scanner hot folder: complete files only, done/ or rejected/ with a note, backlog import."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.letters.hotfolder import watch
from config.settings import Settings
from gateway.services import Services, build_services
from tests.peers import scans
from tests.peers.processes import IntakeProcesses, env_for, wait_until

SETTLE = 1.0


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def hot_folder(tmp_path: Path, services: Services) -> Iterator[Path]:
    folder = tmp_path / "scanner"
    folder.mkdir()
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(services, folder, stop, SETTLE), daemon=True)
    thread.start()
    yield folder
    stop.set()
    thread.join(timeout=30)


def letter_pdf() -> bytes:
    return scans.encode(scans.render_page(scans.FRENCH_LETTER, noise=0.0), "pdf")


def test_file_written_slowly_is_read_only_once_complete(hot_folder: Path) -> None:
    data = letter_pdf()
    target = hot_folder / "lettre-lente.pdf"
    chunks = [data[i : i + len(data) // 5 + 1] for i in range(0, len(data), len(data) // 5 + 1)]
    with target.open("wb") as stream:
        for chunk in chunks:
            stream.write(chunk)
            stream.flush()
            # Pauses shorter than the settle time, as a network scanner makes between pages.
            time.sleep(SETTLE * 0.6)
            assert target.exists(), "the watcher took a file that was still being written"
    note = hot_folder / "done" / "lettre-lente.pdf.reference.txt"
    wait_until(note.exists, "the letter in done/", timeout=30)
    assert (hot_folder / "done" / "lettre-lente.pdf").read_bytes() == data
    assert not (hot_folder / "rejected").exists()


def test_refused_file_goes_to_rejected_with_its_reason(hot_folder: Path) -> None:
    (hot_folder / "virus.pdf").write_bytes(scans.executable_bytes())
    note = hot_folder / "rejected" / "virus.pdf.reason.txt"
    wait_until(note.exists, "the reason file in rejected/", timeout=30)
    lines = note.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "unsupported_type"
    assert "Type de fichier refusé" in lines[1]
    assert (hot_folder / "rejected" / "virus.pdf").exists()


def test_scanner_work_file_is_left_alone(hot_folder: Path) -> None:
    (hot_folder / "page.pdf.part").write_bytes(letter_pdf())
    (hot_folder / "ready.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))
    wait_until((hot_folder / "done" / "ready.pdf").exists, "the complete file in done/")
    assert (hot_folder / "page.pdf.part").exists()


def test_done_file_names_the_reference_of_its_complaint(
    hot_folder: Path, services: Services
) -> None:
    (hot_folder / "a.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    note = hot_folder / "done" / "a.pdf.reference.txt"
    wait_until(note.exists, "the reference note")
    reference = note.read_text().strip()
    assert services.store.complaints.get_by_reference(reference) is not None


def test_backlog_import_command_sorts_every_file(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    # Inside the processes' working folder: a relative argument keeps their log names flat.
    backlog = intake_processes.workdir / "backlog"
    backlog.mkdir()
    (backlog / "one.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (backlog / "two.png").write_bytes(
        scans.encode(scans.render_page(scans.FRENCH_LETTER_PAGE_2, noise=0.0), "png")
    )
    (backlog / "bad.jpg").write_bytes(scans.executable_bytes())
    process = intake_processes.run(
        "letters", "import", "backlog", env=env_for(settings), timeout=120
    )
    assert process.popen.returncode == 0, process.describe()
    assert sorted(p.name for p in (backlog / "done").glob("*.pdf")) == ["one.pdf"]
    assert (backlog / "done" / "two.png").exists()
    assert (backlog / "rejected" / "bad.jpg.reason.txt").exists()
    assert "2 letter(s) recorded, 1 refused" in process.stderr()
