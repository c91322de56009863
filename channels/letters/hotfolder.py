"""The scanner's hot folder: each file the scanner writes there becomes one letter.

The mailroom names the day a letter was received by dropping its scan in a
folder of that date (``incoming/2026-12-05/scan-0042.pdf``); a file dropped
at the top is dated the day the gateway reads it. A file's modification
time never dates a letter: copies keep it, and a scanner's clock may be
wrong. Other subfolders are not read. A manifest beside a scan
(``scan-0042.pdf.json``: ``received_on``, ``sender_name``,
``sender_address``, each optional) gives what the mailroom entered; it is
written before the scan, or within the settle time, and moves with it. A
manifest that cannot be read sends its scan to ``rejected/`` for a person.

A file is read only once its size and modification time have not changed
for ``settle`` seconds (a scanner writing over the network pauses between
pages), and is checked again after reading; the result goes to ``done/``
(with ``NAME.reference.txt``) or, refused by the checks (the sender's
fault, quarantined), to ``rejected/`` (with ``NAME.reason.txt``, in French
and Arabic). A file over the size cap is refused from its size, never read.
Any other failure is ours, not the file's (store down, disk, a bug: decoder
errors are already refusals): the file is left where it is, tried again
after a pause, and the folder goes on with the next. Names starting with
``.`` or ending in ``.part``, ``.tmp`` are the scanner's work in progress
and are never touched. A refused file later replayed from quarantine is
moved on to ``done/`` (``settle_replayed``).

Only regular files are read, and never through a link: anything else in the
folder (a symbolic link, a FIFO, a socket, a device) is moved to
``rejected/`` as ``not_a_regular_file`` without being opened, its target
never read (a link placed in the share must not make the service read a
file the scanner could not), and logged at WARNING with its name. Files
are opened with ``O_NOFOLLOW`` and checked again once open, so a file
swapped for a link in between is refused the same way. A symbolic link to
a folder is not a dated folder and is not listed.

Nothing is written through a link either. ``done/`` and ``rejected/`` must
be real folders: one that is a link (or not a folder), like a dated folder
replaced by a link after it was listed, is never followed: an ERROR names
it and the folder is not processed (its files stay where they are) until a
person puts it right. Moves and notes go through the folder opened with
``O_NOFOLLOW``, so a swap after the check is refused the same way. A note
is created, never opened over an existing entry (``O_EXCL | O_NOFOLLOW``,
mode 0640): if its name is taken (a link planted in ``rejected/``), it is
written under another name, as scans are. (The watched folder itself may be
a link: that is the operator's choice.)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from channels.letters.intake import LetterFile, LetterUpload, ScanRejectedDate, accept_letter
from config.retry import backoff_delay
from gateway.lib.logs import mask_personal_data
from gateway.lib.services import Services
from normalizer.errors import InputRejected
from normalizer.ocr import ScanRejected

log = logging.getLogger("intake.letters.hotfolder")

DONE, REJECTED = "done", "rejected"
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")
NOTE_SUFFIXES = (".reason.txt", ".reference.txt")
POLL_INTERVAL = 0.5
# After our own failure on a file, it is tried again after these pauses (doubling).
RETRY_FIRST, RETRY_LONGEST = 5.0, 300.0
STILL_WRITING = "still being written"
MANIFEST_SUFFIX = ".json"
MANIFEST_MAX_BYTES = 64 * 1024
# What a manifest may say, and the longest each may be (as on the upload page).
MANIFEST_FIELDS = {"received_on": 10, "sender_name": 200, "sender_address": 1000}
# The key of the upload's source_ids naming the hot folder a file came from.
HOT_FOLDER_ID = "hot_folder"
NOT_REGULAR = "not_a_regular_file"
# Opening never follows a link and never waits on a FIFO's writer.
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
# done/ and rejected/ are opened as folders, never through a link.
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# A note is a new file: never an existing entry, never through a link.
NOTE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
NOTE_MODE = 0o640
UNSAFE_FOLDER = "unsafe_folder"


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    status: str  # done, rejected, retry
    detail: str = ""


@dataclass(frozen=True)
class Manifest:
    """What the mailroom entered for one scan."""

    received_on: date | None = None
    sender_name: str | None = None
    sender_address: str | None = None


class ManifestInvalid(InputRejected):
    code = "invalid_manifest"


class NotRegularFile(Exception):
    """The entry is a link, a FIFO, a socket or a device: never opened through."""


class UnsafeFolder(Exception):
    """``done/``, ``rejected/`` or a dated folder is not a real folder (a link?): never followed."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = folder


def is_real_folder(path: Path) -> bool:
    """A folder itself (``lstat``: a link to one is not)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def unsafe_folder(root: Path) -> Path | None:
    """``done/`` or ``rejected/`` when it exists and is not a real folder (None: both fine)."""
    for folder in (root / DONE, root / REJECTED):
        if os.path.lexists(folder) and not is_real_folder(folder):
            return folder
    return None


def is_regular(path: Path) -> bool:
    """A regular file itself (``lstat``: a link to one is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """At most ``limit + 1`` bytes of the regular file ``path`` and its status once open.

    ``NotRegularFile`` for anything else (a link is not followed, a FIFO not waited on).
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW on a link
            raise NotRegularFile(str(path.name)) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise NotRegularFile(str(path.name))
        return handle.read(limit + 1), status


def manifest_of(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def read_manifest(path: Path) -> Manifest:
    """The manifest beside the scan ``path`` (empty if none); ``ManifestInvalid`` says why not."""
    source = manifest_of(path)
    if not os.path.lexists(source):
        return Manifest()
    try:
        data, _status = read_regular(source, MANIFEST_MAX_BYTES)
    except NotRegularFile:
        raise ManifestInvalid("the manifest is not a regular file (a link?)") from None
    if len(data) > MANIFEST_MAX_BYTES:
        raise ManifestInvalid(f"the manifest is over {MANIFEST_MAX_BYTES} bytes")
    try:
        values = json.loads(data)
    except ValueError as exc:
        raise ManifestInvalid(f"not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ManifestInvalid("not a JSON object")
    for key, value in values.items():
        if key not in MANIFEST_FIELDS:
            raise ManifestInvalid(f"unknown field {key!r}")
        if not isinstance(value, str) or len(value) > MANIFEST_FIELDS[key]:
            raise ManifestInvalid(f"{key}: text of at most {MANIFEST_FIELDS[key]} characters")
    day = values.get("received_on")
    received = folder_date(day) if day else None
    if day and received is None:
        raise ManifestInvalid(f"received_on: not a date (YYYY-MM-DD): {day!r}")
    return Manifest(received, values.get("sender_name"), values.get("sender_address"))


def folder_date(name: str) -> date | None:
    """The day a dated folder names (``2026-12-05``), or None for any other folder."""
    if len(name) != len("2026-12-05"):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def candidates(root: Path) -> list[Path]:
    """The scanner's finished files: at the top, and in the folders named by a date.

    Entries that are not folders are listed whatever they are (links, FIFOs
    included: ``process_file`` sets them aside unread); nothing is followed.
    """
    folders = [root] + [
        Path(entry.path)
        for entry in _entries(root)
        if entry.is_dir(follow_symlinks=False) and folder_date(entry.name)
    ]
    found = [
        (entry.stat(follow_symlinks=False).st_mtime_ns, entry.name, Path(entry.path))
        for folder in folders
        for entry in _entries(folder)
        if not entry.is_dir(follow_symlinks=False)
        and not entry.name.startswith(".")
        and not entry.name.lower().endswith((*IN_PROGRESS_SUFFIXES, MANIFEST_SUFFIX))
    ]
    return [path for _, _, path in sorted(found)]


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as listing:
        return list(listing)


def received_on(root: Path, path: Path) -> date | None:
    """The day the mailroom received the letter: its dated folder's; None (today) at the top."""
    return folder_date(path.parent.name) if path.parent != root else None


@dataclass
class Stability:
    """Remembers each file's (size, mtime) and since when it has not changed."""

    settle: float
    seen: dict[Path, tuple[tuple[int, int], float]] = field(default_factory=dict)

    def ready(self, path: Path, now: float) -> bool:
        status = os.lstat(path)  # a link's own, never its target's
        signature = (status.st_size, status.st_mtime_ns)
        previous = self.seen.get(path)
        if previous is None or previous[0] != signature:
            self.seen[path] = (signature, now)
            return self.settle <= 0
        return now - previous[1] >= self.settle

    def forget(self, path: Path) -> None:
        self.seen.pop(path, None)


def _open_folder(folder: Path) -> int:
    """A descriptor of ``folder`` (made if missing); ``UnsafeFolder`` if it is a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder)
    try:
        return os.open(folder, FOLDER_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeFolder(folder) from None
        raise


def _taken(folder_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _stamped(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{Path(name).stem}-{stamp}{Path(name).suffix}"


def _free_name(folder_fd: int, name: str, note_suffix: str) -> str:
    """``name``, or a stamped one, free in the folder with its manifest's and note's names."""
    for candidate in (name, _stamped(name), _stamped(name)):
        names = (candidate, candidate + MANIFEST_SUFFIX, candidate + note_suffix)
        if not any(_taken(folder_fd, each) for each in names):
            return candidate
    return _stamped(name)


def _write_note(folder_fd: int, name: str, note_suffix: str, text: str) -> str:
    """Create the note of ``name`` (another name if that one is taken); the name used."""
    data = (text + "\n").encode("utf-8")
    for candidate in (name + note_suffix, _stamped(name) + note_suffix):
        try:
            fd = os.open(candidate, NOTE_FLAGS, NOTE_MODE, dir_fd=folder_fd)
        except FileExistsError:  # a planted entry (a link?) has that name: never written through
            log.warning("hot folder: note %s already exists, written under another name", name)
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return candidate
    raise FileExistsError(errno.EEXIST, "no free name for the note", name + note_suffix)


def _move(path: Path, folder: Path, note_suffix: str, note: str) -> Path:
    """Move a scan, and its manifest if it has one, into ``folder`` with a note.

    ``folder`` is used through a descriptor opened without following links
    (``UnsafeFolder`` if it is one); nothing there is overwritten or written through.
    """
    folder_fd = _open_folder(folder)
    try:
        name = _free_name(folder_fd, path.name, note_suffix)
        # A link is moved as a link: its target is not touched.
        os.replace(path, name, dst_dir_fd=folder_fd)
        if os.path.lexists(manifest_of(path)):
            os.replace(manifest_of(path), name + MANIFEST_SUFFIX, dst_dir_fd=folder_fd)
        _write_note(folder_fd, name, note_suffix, note)
    finally:
        os.close(folder_fd)
    return folder / name


def process_file(services: Services, root: Path, path: Path) -> FileOutcome:
    """Turn one complete file into a letter and move it; never raises for a bad file."""
    data = _read_whole(root, path, services.settings.letter_max_bytes)
    if isinstance(data, FileOutcome):
        return data
    try:
        manifest = read_manifest(path)
    except ManifestInvalid as exc:  # what the mailroom entered: theirs to correct
        _move(path, root / REJECTED, ".reason.txt", f"{exc.code}\n{exc}")
        log.warning("hot folder: %s set aside: its manifest cannot be read", path.name)
        return FileOutcome(path, REJECTED, exc.code)
    upload = LetterUpload(
        files=[LetterFile(path.name, data)],
        source="hotfolder",
        received_on=manifest.received_on or received_on(root, path),
        sender_name=manifest.sender_name,
        sender_address=manifest.sender_address,
        # The folder, so that a replay of this file from quarantine can find it in rejected/.
        source_ids={"file_name": path.name, HOT_FOLDER_ID: str(root.resolve())},
    )
    try:
        accepted = accept_letter(services, upload)
    except ScanRejected as exc:
        return _refuse(root, path, exc)
    except ScanRejectedDate as exc:  # a clock in the future: keep it for a person
        _move(path, root / REJECTED, ".reason.txt", f"invalid_date\n{exc}")
        return FileOutcome(path, REJECTED, "invalid_date")
    _move(path, root / DONE, ".reference.txt", accepted.reference)
    log.info("hot folder: %s is letter %s", path.name, accepted.reference)
    return FileOutcome(path, DONE, accepted.reference)


def _read_whole(root: Path, path: Path, limit: int) -> bytes | FileOutcome:
    """The file's bytes, or what became of it: set aside, refused for its size, still written."""
    if not is_regular(path):
        return _set_aside(root, path)
    before = os.lstat(path)
    if before.st_size > limit:  # refused from its size: never read into memory
        return _refuse(root, path, ScanRejected("too_large", size=before.st_size, limit=limit))
    try:
        data, opened = read_regular(path, limit)
    except NotRegularFile:  # swapped for a link or a FIFO since it was listed
        return _set_aside(root, path)
    after = os.lstat(path)
    if (
        len(data) != after.st_size
        or before.st_mtime_ns != after.st_mtime_ns
        or (opened.st_dev, opened.st_ino) != (after.st_dev, after.st_ino)
    ):
        return FileOutcome(path, "retry", STILL_WRITING)
    return data


def _set_aside(root: Path, path: Path) -> FileOutcome:
    """A link, FIFO, socket or device: to ``rejected/`` as it is, never opened."""
    try:
        kind = _kind(os.lstat(path).st_mode)
    except OSError:
        return FileOutcome(path, "retry", "gone")
    note = (
        f"{NOT_REGULAR}\nCe n'est pas un fichier ordinaire ({kind}) : il n'a pas été lu.\n"
        f"ليس ملفًا عاديًا ({kind}): لم تتم قراءته."
    )
    _move(path, root / REJECTED, ".reason.txt", note)
    log.warning("hot folder: %s set aside unread: %s (%s)", path.name, NOT_REGULAR, kind)
    return FileOutcome(path, REJECTED, NOT_REGULAR)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "not a file"


def _refuse(root: Path, path: Path, exc: ScanRejected) -> FileOutcome:
    note = f"{exc.code}\n{exc.message('fr')}\n{exc.message('ar')}"
    _move(path, root / REJECTED, ".reason.txt", note)
    log.warning("hot folder: %s refused: %s", path.name, exc.code)
    return FileOutcome(path, REJECTED, exc.code)


def _safely(services: Services, root: Path, path: Path) -> FileOutcome:
    """``process_file`` that never raises: one file must not stop the folder.

    What reaches here is our failure, never the file's (the checks turn every
    decoder error into a refusal): a store or disk failure, or a bug. Filing
    the letter in ``rejected/`` would blame the customer and keep it out of
    quarantine, where nothing could replay it; so it stays in place, is tried
    again after a pause, and the next file is read meanwhile.
    """
    try:
        if path.parent != root and not is_real_folder(path.parent):
            raise UnsafeFolder(path.parent)  # a dated folder swapped for a link since listed
        return process_file(services, root, path)
    except UnsafeFolder as exc:
        log.error(
            "hot folder: %s is not a real folder (a link?): not followed, %s left in place",
            exc.folder,
            path.name,
        )
        return FileOutcome(path, "retry", UNSAFE_FOLDER)
    except Exception as exc:
        detail = mask_personal_data(f"{type(exc).__name__}: {exc}")[:200]
        log.error("hot folder: %s left in place after an error of ours: %s", path.name, detail)
        return FileOutcome(path, "retry", type(exc).__name__)


@dataclass
class RetryDelay:
    """When a file our own failure left in place may be tried again (``backoff_delay``)."""

    first: float = RETRY_FIRST
    longest: float = RETRY_LONGEST
    # Per file: when it may be tried again, and its failures in a row.
    waits: dict[Path, tuple[float, int]] = field(default_factory=dict)

    def allows(self, path: Path, now: float) -> bool:
        wait = self.waits.get(path)
        return wait is None or now >= wait[0]

    def failed(self, path: Path, now: float) -> None:
        failures = self.waits.get(path, (now, 0))[1] + 1
        self.waits[path] = (now + backoff_delay(failures, self.first, self.longest), failures)

    def forget(self, path: Path) -> None:
        self.waits.pop(path, None)


def watch(services: Services, root: Path, stop: threading.Event, settle: float = 2.0) -> None:
    """Process files as they become complete, until ``stop`` is set."""
    root.mkdir(parents=True, exist_ok=True)
    stability, delay = Stability(settle), RetryDelay()
    log.info("watching %s (settle %.1f s)", root, settle)
    reported: Path | None = None
    while not stop.is_set():
        unsafe = unsafe_folder(root)
        if unsafe is not None:  # never followed: the folder waits for a person
            if unsafe != reported:
                log.error(_UNSAFE_MESSAGE, unsafe, root)
            reported = unsafe
            stop.wait(POLL_INTERVAL)
            continue
        reported = None
        try:
            found = candidates(root)
        except OSError as exc:  # the folder itself went away (a network share): wait
            log.error("hot folder: %s cannot be listed: %s", root, type(exc).__name__)
            found = []
        for path in found:
            outcome = _visit(services, root, path, stability, delay)
            unsafe_now = outcome is not None and outcome.detail == UNSAFE_FOLDER
            if unsafe_now and unsafe_folder(root) is not None:
                break  # done/ or rejected/: reported at the next pass
        stop.wait(POLL_INTERVAL)


_UNSAFE_MESSAGE = "hot folder: %s is not a real folder (a link?): not followed, %s not processed"


def _visit(
    services: Services, root: Path, path: Path, stability: Stability, delay: RetryDelay
) -> FileOutcome | None:
    """One pass over one file: read it if complete and not waiting out a failure."""
    now = time.monotonic()
    try:
        ready = stability.ready(path, now)
    except OSError:  # gone (moved by a person) or unreadable metadata: seen afresh later
        stability.forget(path)
        delay.forget(path)
        return None
    if not ready or not delay.allows(path, now):
        return None
    outcome = _safely(services, root, path)
    if outcome.status != "retry":
        stability.forget(path)
        delay.forget(path)
    elif outcome.detail not in (STILL_WRITING, UNSAFE_FOLDER):
        delay.failed(path, now)
    return outcome


def import_folder(
    services: Services,
    root: Path,
    on_progress: Callable[[Iterable[Path]], Iterable[Path]] = lambda items: items,
) -> list[FileOutcome]:
    """Process every file in ``root`` once (a backlog); ``on_progress`` wraps the iteration.

    Stops (files left in place, an ERROR logged) when ``done/`` or ``rejected/``
    is not a real folder, or becomes a link on the way.
    """
    unsafe = unsafe_folder(root)
    if unsafe is not None:
        log.error(_UNSAFE_MESSAGE, unsafe, root)
        return []
    outcomes = []
    for path in on_progress(candidates(root)):
        outcome = _safely(services, root, path)
        outcomes.append(outcome)
        if outcome.detail == UNSAFE_FOLDER and unsafe_folder(root) is not None:
            break  # done/ or rejected/ became a link: a dated one only skips its own files
    return outcomes


def settle_replayed(folder: str, data: bytes, reference: str) -> Path | None:
    """A refused file that a quarantine replay has now recorded: from rejected/ to done/.

    Found by its content (it may carry a time stamp in its name), moved to
    ``done/`` with its reference note; its reason note is removed. None when
    it is not there (moved by hand, or the folder not reachable from here).
    """
    rejected = Path(folder) / REJECTED
    unsafe = unsafe_folder(Path(folder))
    if unsafe is not None:
        log.error(_UNSAFE_MESSAGE, unsafe, folder)
        return None
    found = _rejected_copy(rejected, data)
    if found is None:
        return None
    try:
        target = _move(found, Path(folder) / DONE, ".reference.txt", reference)
    except UnsafeFolder as exc:
        log.error(_UNSAFE_MESSAGE, exc.folder, folder)
        return None
    found.with_name(found.name + ".reason.txt").unlink(missing_ok=True)
    log.info("hot folder: %s replayed as letter %s, moved to done/", found.name, reference)
    return target


def _rejected_copy(rejected: Path, data: bytes) -> Path | None:
    digest = hashlib.sha256(data).digest()
    for entry in sorted(rejected.iterdir()):
        # A link set aside there is never read through.
        if entry.name.endswith((*NOTE_SUFFIXES, MANIFEST_SUFFIX)) or not is_regular(entry):
            continue
        if os.lstat(entry).st_size != len(data):
            continue
        try:
            content, _status = read_regular(entry, len(data))
        except (NotRegularFile, OSError):
            continue
        if hashlib.sha256(content).digest() == digest:
            return entry
    return None
