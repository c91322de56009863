"""The hot folder reads regular files only: links, FIFOs and the like are set aside unread.

A symbolic link in the scanner's share must not make the service read a file
the scanner could not (an env file, another customer's stored scan); a FIFO
must not stop the folder. Each is moved to ``rejected/`` as it is, with the
reason ``not_a_regular_file``; its target is never opened (proved with a
FIFO target whose writer would be released by any reader).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.letters import hotfolder
from channels.letters.hotfolder import NOT_REGULAR, import_folder, watch
from channels.letters.intake import LetterAccepted, LetterUpload
from gateway.lib.services import Services
from gateway.store.quarantine import Quarantine
from gateway.store.tables import ComplaintRow
from tests.peers import scans
from tests.peers.complaints import count_rows
from tests.peers.processes import wait_until

SECRET = b"INTAKE_SESSION_SECRET=never-read-by-the-hot-folder\n"


class Watched:
    """Whether anyone opened a FIFO for reading: a writer waits on it in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()

    def _write(self) -> None:
        with open(self.path, "wb") as pipe:  # blocks until a reader opens the FIFO
            self.opened.set()
            pipe.write(SECRET)

    def release(self) -> None:
        """Open it ourselves, so the writer's thread ends."""
        if not self.opened.is_set():
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                self.thread.join(timeout=5)
            finally:
                os.close(fd)


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[LetterUpload]:
    """What the hot folder hands to the letter intake (the letters still recorded)."""
    real, seen = hotfolder.accept_letter, []

    def accept(services: Services, upload: LetterUpload) -> LetterAccepted:
        seen.append(upload)
        return real(services, upload)

    monkeypatch.setattr(hotfolder, "accept_letter", accept)
    return seen


@pytest.fixture
def fifo_target(tmp_path: Path) -> Iterator[Watched]:
    watched = Watched(tmp_path / "elsewhere.fifo")
    yield watched
    watched.release()


def reason_of(folder: Path, name: str) -> str:
    return (folder / "rejected" / f"{name}.reason.txt").read_text(encoding="utf-8")


def test_links_and_fifos_are_set_aside_unread_and_the_real_scan_is_a_letter(
    tmp_path: Path,
    services: Services,
    uploads: list[LetterUpload],
    fifo_target: Watched,
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    # A secret under the data folder, another customer's stored scan, and a real scan.
    secret = services.settings.data_dir / "intake.env"
    secret.write_bytes(SECRET)
    stored_scan = tmp_path / "stored" / "other-customer.pdf"
    stored_scan.parent.mkdir()
    stored_scan.write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (folder / "scan-0001.pdf").symlink_to(secret)
    (folder / "scan-0002.pdf").symlink_to(stored_scan)
    (folder / "scan-0003.pdf").symlink_to(fifo_target.path)
    os.mkfifo(folder / "scan-0004.pdf")
    (folder / "scan-0005.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))

    with caplog.at_level(logging.WARNING, logger="intake.letters.hotfolder"):
        outcomes = {item.path.name: item for item in import_folder(services, folder)}

    set_aside = ["scan-0001.pdf", "scan-0002.pdf", "scan-0003.pdf", "scan-0004.pdf"]
    for name in set_aside:
        assert (outcomes[name].status, outcomes[name].detail) == ("rejected", NOT_REGULAR)
        assert reason_of(folder, name).splitlines()[0] == NOT_REGULAR
        assert name in caplog.text
        assert not os.path.lexists(folder / name)
    assert outcomes["scan-0005.pdf"].status == "done"
    # Moved as they were: links still links to the same targets, the FIFO still a FIFO.
    assert os.readlink(folder / "rejected" / "scan-0001.pdf") == str(secret)
    assert os.readlink(folder / "rejected" / "scan-0002.pdf") == str(stored_scan)
    assert (folder / "rejected" / "scan-0004.pdf").is_fifo()
    # Nothing of the targets was read: one letter (the real scan) handed over, nothing
    # quarantined, and the FIFO target's writer still waits for its first reader.
    assert [upload.files[0].name for upload in uploads] == ["scan-0005.pdf"]
    assert count_rows(services.store, ComplaintRow) == 1
    assert Quarantine(services.store.engine).entries() == []
    assert not fifo_target.opened.is_set()
    assert secret.read_bytes() == SECRET
    assert "never-read" not in caplog.text


def test_a_link_in_a_watched_folder_is_set_aside_and_the_watcher_goes_on(
    tmp_path: Path, services: Services, uploads: list[LetterUpload]
) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    stored_scan = tmp_path / "stored.pdf"
    stored_scan.write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (folder / "a-link.pdf").symlink_to(stored_scan)
    os.mkfifo(folder / "a-fifo.pdf")
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(services, folder, stop, 0.2), daemon=True)
    thread.start()
    try:
        wait_until((folder / "rejected" / "a-link.pdf.reason.txt").exists, "the link set aside")
        wait_until((folder / "rejected" / "a-fifo.pdf.reason.txt").exists, "the FIFO set aside")
        (folder / "real.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))
        wait_until((folder / "done" / "real.pdf").exists, "the real scan read after them")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert [upload.files[0].name for upload in uploads] == ["real.pdf"]


def test_a_manifest_that_is_a_link_is_not_read(
    tmp_path: Path, services: Services, uploads: list[LetterUpload], fifo_target: Watched
) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    (folder / "scan.pdf.json").symlink_to(fifo_target.path)

    (outcome,) = import_folder(services, folder)

    assert (outcome.status, outcome.detail) == ("rejected", "invalid_manifest")
    assert not fifo_target.opened.is_set()
    assert uploads == []


def test_a_replay_never_reads_a_link_set_aside_in_rejected(
    tmp_path: Path, fifo_target: Watched
) -> None:
    rejected = tmp_path / "rejected"
    rejected.mkdir()
    (rejected / "scan.pdf").symlink_to(fifo_target.path)

    assert hotfolder.settle_replayed(str(tmp_path), SECRET, "CP-TEST-TEST") is None
    assert not fifo_target.opened.is_set()


# -- writing: nothing is written or moved through a link (S14, the write side) ------


def test_a_planted_note_link_is_not_written_through(tmp_path: Path, services: Services) -> None:
    folder = tmp_path / "scanner"
    (folder / "rejected").mkdir(parents=True)
    # A file the service can write, and a note link planted where a refusal's note goes.
    target = tmp_path / "settings.env"
    target.write_bytes(SECRET)
    (folder / "rejected" / "x.pdf.reason.txt").symlink_to(target)
    (folder / "x.pdf").write_bytes(b"%PDF-1.4 not really a pdf")

    (outcome,) = import_folder(services, folder)

    assert outcome.status == "rejected"
    assert target.read_bytes() == SECRET  # not written through
    assert os.readlink(folder / "rejected" / "x.pdf.reason.txt") == str(target)
    assert not (folder / "x.pdf").exists()
    # The scan is set aside under another name, with its note beside it, created 0640.
    (moved,) = [
        entry
        for entry in (folder / "rejected").iterdir()
        if entry.name.startswith("x") and entry.name.endswith(".pdf")
    ]
    assert moved.read_bytes() == b"%PDF-1.4 not really a pdf"
    note = moved.with_name(moved.name + ".reason.txt")
    assert not note.is_symlink()
    assert note.read_text(encoding="utf-8").splitlines()[0] == outcome.detail
    assert oct(note.stat().st_mode & 0o777) == oct(0o640)


def test_a_rejected_folder_replaced_by_a_link_is_not_followed(
    tmp_path: Path,
    services: Services,
    uploads: list[LetterUpload],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "rejected").symlink_to(elsewhere, target_is_directory=True)
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    os.mkfifo(folder / "a-fifo.pdf")

    with caplog.at_level(logging.ERROR, logger="intake.letters.hotfolder"):
        assert import_folder(services, folder) == []

    assert list(elsewhere.iterdir()) == []
    assert (folder / "bad.pdf").exists() and (folder / "a-fifo.pdf").is_fifo()
    assert [record.levelname for record in caplog.records] == ["ERROR"]
    assert str(folder / "rejected") in caplog.text
    assert uploads == []


def test_a_rejected_folder_swapped_for_a_link_during_a_pass_is_not_followed(
    tmp_path: Path,
    services: Services,
    uploads: list[LetterUpload],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The swap after the check: the move itself refuses the link, and the pass stops."""
    folder = tmp_path / "scanner"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "bad-1.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (folder / "bad-2.pdf").write_bytes(b"%PDF-1.4 not really a pdf either")
    real_read = hotfolder._read_whole

    def swap_then_read(root: Path, path: Path, limit: int) -> bytes | hotfolder.FileOutcome:
        if not os.path.lexists(folder / "rejected"):
            (folder / "rejected").symlink_to(elsewhere, target_is_directory=True)
        return real_read(root, path, limit)

    monkeypatch.setattr(hotfolder, "_read_whole", swap_then_read)
    with caplog.at_level(logging.ERROR, logger="intake.letters.hotfolder"):
        outcomes = import_folder(services, folder)

    assert [(item.status, item.detail) for item in outcomes] == [("retry", hotfolder.UNSAFE_FOLDER)]
    assert list(elsewhere.iterdir()) == []
    assert (folder / "bad-1.pdf").exists() and (folder / "bad-2.pdf").exists()
    assert str(folder / "rejected") in caplog.text


def test_a_watcher_leaves_the_folder_alone_while_done_is_a_link(
    tmp_path: Path, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "done").symlink_to(elsewhere, target_is_directory=True)
    (folder / "real.pdf").write_bytes(scans.text_pdf(scans.FRENCH_LETTER_PAGE_2))
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(services, folder, stop, 0.0), daemon=True)
    with caplog.at_level(logging.ERROR, logger="intake.letters.hotfolder"):
        thread.start()
        try:
            wait_until(lambda: str(folder / "done") in caplog.text, "the error logged")
            # Put right by a person: the folder is processed again.
            (folder / "done").unlink()
            wait_until((folder / "done" / "real.pdf").exists, "the scan read once done/ is real")
        finally:
            stop.set()
            thread.join(timeout=30)
    assert list(elsewhere.iterdir()) == []
    assert caplog.text.count("not a real folder") == 1  # once, not at every pass
