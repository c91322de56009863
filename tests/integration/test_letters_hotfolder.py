"""The scanner hot folder: complete files only, done/ or rejected/ with a note, backlog import.

One file must never stop the folder: a file that breaks the decoder is set
aside and the next file is read; a file our own failure (store down, or a
bug of ours) leaves in place waits before its next try.
"""

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.letters import hotfolder
from channels.letters.hotfolder import RetryDelay, import_folder, watch
from channels.letters.intake import LetterAccepted, LetterUpload
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store import StoreUnavailable
from gateway.store.quarantine import Quarantine
from gateway.store.tables import ComplaintRow
from tests.peers import scans
from tests.peers.complaints import count_rows
from tests.peers.processes import IntakeProcesses, env_for, wait_until

SETTLE = 1.0


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def watcher(tmp_path: Path, services: Services) -> Iterator[tuple[Path, threading.Thread]]:
    """A watched folder, and the watcher's thread (to see that it is still running)."""
    folder = tmp_path / "scanner"
    folder.mkdir()
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(services, folder, stop, SETTLE), daemon=True)
    thread.start()
    yield folder, thread
    stop.set()
    thread.join(timeout=30)


@pytest.fixture
def hot_folder(watcher: tuple[Path, threading.Thread]) -> Path:
    return watcher[0]


def failing_on(monkeypatch: pytest.MonkeyPatch, name: str, error: Exception) -> list[LetterUpload]:
    """``accept_letter`` raising ``error`` for the file ``name``; the uploads it saw."""
    real = hotfolder.accept_letter
    seen: list[LetterUpload] = []

    def accept(services: Services, upload: LetterUpload) -> LetterAccepted:
        seen.append(upload)
        if upload.files[0].name == name:
            raise error
        return real(services, upload)

    monkeypatch.setattr(hotfolder, "accept_letter", accept)
    return seen


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


def test_truncated_multipage_tiffs_are_set_aside_and_the_next_file_read(
    watcher: tuple[Path, threading.Thread],
) -> None:
    folder, thread = watcher
    cuts = scans.truncated_multipage_tiffs()
    for number, data in enumerate(cuts):
        (folder / f"coupee-{number}.tif").write_bytes(data)
    (folder / "suivante.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))
    wait_until((folder / "done" / "suivante.pdf").exists, "the next letter in done/", timeout=60)
    for number in range(len(cuts)):
        note = folder / "rejected" / f"coupee-{number}.tif.reason.txt"
        wait_until(note.exists, f"the reason for cut {number}", timeout=30)
        assert note.read_text(encoding="utf-8").splitlines()[0] == "unreadable"
    assert thread.is_alive()


@pytest.mark.parametrize(
    "error",
    [RuntimeError("no such page for 0612345678"), StoreUnavailable("database down")],
    ids=["bug", "store-down"],
)
def test_error_of_ours_on_one_file_leaves_it_in_place_and_the_watcher_goes_on(
    watcher: tuple[Path, threading.Thread],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    # Not the customer's file: never filed in rejected/ as "unreadable", and
    # the next file does not wait for it.
    folder, thread = watcher
    seen = failing_on(monkeypatch, "piege.pdf", error)
    (folder / "piege.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    wait_until(lambda: seen, "a first try of the file")
    (folder / "suivante.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))
    wait_until((folder / "done" / "suivante.pdf").exists, "the next letter in done/", timeout=30)
    assert (folder / "piege.pdf").exists()
    assert not (folder / "rejected").exists()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    kind = type(error).__name__
    assert any("piege.pdf" in line and kind in line for line in errors), errors
    assert not any("0612345678" in line for line in errors)
    assert thread.is_alive()


def test_retry_after_our_failure_waits_longer_each_time() -> None:
    delay, path = RetryDelay(first=5.0, longest=12.0), Path("attente.pdf")
    assert delay.allows(path, 100.0)
    delay.failed(path, 100.0)
    assert not delay.allows(path, 104.9) and delay.allows(path, 105.0)
    delay.failed(path, 105.0)
    assert not delay.allows(path, 114.9) and delay.allows(path, 115.0)
    delay.failed(path, 115.0)
    assert not delay.allows(path, 126.9) and delay.allows(path, 127.0)  # at most 12 s
    delay.forget(path)
    assert delay.allows(path, 0.0)


def test_backlog_import_goes_on_after_an_error_of_ours(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_on(monkeypatch, "a-piege.pdf", ValueError("bug"))
    (tmp_path / "a-piege.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (tmp_path / "b-bonne.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))

    outcomes = import_folder(services, tmp_path)

    assert sorted((o.path.name, o.status) for o in outcomes) == [
        ("a-piege.pdf", "retry"),
        ("b-bonne.pdf", "done"),
    ]
    assert (tmp_path / "a-piege.pdf").exists()
    assert not (tmp_path / "rejected").exists()


def test_file_over_the_size_cap_is_refused_without_being_read(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = build_services(settings.model_copy(update={"letter_max_bytes": 1024}))
    try:
        seen = failing_on(monkeypatch, "-", RuntimeError("never"))
        big = tmp_path / "gros.pdf"
        big.write_bytes(scans.text_pdf(scans.FRENCH_LETTER) + b"%" * 2048)

        (outcome,) = import_folder(small, tmp_path)

        assert (outcome.status, outcome.detail) == ("rejected", "too_large")
        assert seen == []  # never handed to the letter intake
        note = tmp_path / "rejected" / "gros.pdf.reason.txt"
        assert note.read_text(encoding="utf-8").splitlines()[0] == "too_large"
        assert Quarantine(small.store.engine).entries() == []
    finally:
        small.close()


def local_day(moment: datetime, settings: Settings) -> date:
    return moment.astimezone(ZoneInfo(settings.timezone)).date()


def test_a_scan_in_a_dated_folder_is_a_letter_received_that_day(
    tmp_path: Path, services: Services, settings: Settings
) -> None:
    day = local_day(datetime.now(UTC), settings) - timedelta(days=3)
    dated = tmp_path / day.isoformat()
    dated.mkdir()
    (dated / "scan-0042.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))

    (outcome,) = import_folder(services, tmp_path)

    assert outcome.status == "done", outcome
    complaint = services.store.complaints.get_by_reference(outcome.detail)
    assert complaint is not None
    assert local_day(complaint.received_at, settings) == day
    assert (tmp_path / "done" / "scan-0042.pdf").exists()


def test_a_scan_at_the_top_is_dated_the_day_it_is_read_never_from_its_mtime(
    tmp_path: Path, services: Services, settings: Settings
) -> None:
    scan = tmp_path / "copied-long-ago.pdf"
    scan.write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    long_ago = time.time() - 20 * 86400
    os.utime(scan, (long_ago, long_ago))

    (outcome,) = import_folder(services, tmp_path)

    complaint = services.store.complaints.get_by_reference(outcome.detail)
    assert complaint is not None
    assert local_day(complaint.received_at, settings) == local_day(datetime.now(UTC), settings)


def test_folders_not_named_by_a_date_are_not_read(tmp_path: Path, services: Services) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "old.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (tmp_path / "2026-13-45").mkdir()
    (tmp_path / "2026-13-45" / "odd.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))

    assert import_folder(services, tmp_path) == []
    assert (archive / "old.pdf").exists()


def test_a_manifest_gives_the_sender_and_the_day_the_mailroom_entered(
    tmp_path: Path, services: Services, settings: Settings
) -> None:
    day = local_day(datetime.now(UTC), settings) - timedelta(days=2)
    scan = tmp_path / "scan-0042.pdf"
    scan.write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    manifest = {
        "received_on": day.isoformat(),
        "sender_name": "Fatima Zahra Bennani",
        "sender_address": "12 rue Ibn Battouta, 20250 Casablanca",
    }
    (tmp_path / "scan-0042.pdf.json").write_text(json.dumps(manifest), encoding="utf-8")

    (outcome,) = import_folder(services, tmp_path)

    complaint = services.store.complaints.get_by_reference(outcome.detail)
    assert complaint is not None
    assert local_day(complaint.received_at, settings) == day
    assert complaint.customer.name == "Fatima Zahra Bennani"
    assert complaint.customer.postal_address == "12 rue Ibn Battouta, 20250 Casablanca"
    assert (tmp_path / "done" / "scan-0042.pdf.json").exists()


@pytest.mark.parametrize(
    "manifest",
    ["{not json", '["a list"]', '{"received_on": "05/12/2026"}', '{"sender_phone": "0661"}'],
    ids=["not-json", "not-an-object", "not-a-date", "unknown-field"],
)
def test_a_scan_whose_manifest_cannot_be_read_is_set_aside_for_a_person(
    tmp_path: Path, services: Services, manifest: str
) -> None:
    (tmp_path / "scan.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (tmp_path / "scan.pdf.json").write_text(manifest, encoding="utf-8")

    (outcome,) = import_folder(services, tmp_path)

    assert (outcome.status, outcome.detail) == ("rejected", "invalid_manifest")
    note = (tmp_path / "rejected" / "scan.pdf.reason.txt").read_text(encoding="utf-8")
    assert note.startswith("invalid_manifest\n")
    assert (tmp_path / "rejected" / "scan.pdf.json").exists()
    assert count_rows(services.store, ComplaintRow) == 0


def test_a_manifest_alone_is_not_read_as_a_scan(tmp_path: Path, services: Services) -> None:
    (tmp_path / "waiting-for-its-scan.pdf.json").write_text("{}", encoding="utf-8")

    assert import_folder(services, tmp_path) == []
