"""The scanner's hot folder: each file the scanner writes there becomes one letter.

A file is read only once its size and modification time have not changed
for ``settle`` seconds (a scanner writing over the network pauses between
pages), and is checked again after reading; the result goes to ``done/``
(with ``NAME.reference.txt``) or ``rejected/`` (with ``NAME.reason.txt``,
in French and Arabic). Our own failure (store down) leaves the file where it
is, to be tried again. Names starting with ``.`` or ending in ``.part``,
``.tmp`` are the scanner's work in progress and are never touched.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from channels.letters.intake import LetterFile, LetterUpload, ScanRejectedDate, accept_letter
from gateway.services import Services
from gateway.store import StoreUnavailable
from normalizer.ocr import ScanRejected

log = logging.getLogger("intake.letters.hotfolder")

DONE, REJECTED = "done", "rejected"
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")
POLL_INTERVAL = 0.5


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    status: str  # done, rejected, retry
    detail: str = ""


def candidates(root: Path) -> list[Path]:
    found = [
        entry
        for entry in root.iterdir()
        if entry.is_file()
        and not entry.name.startswith(".")
        and not entry.name.lower().endswith(IN_PROGRESS_SUFFIXES)
    ]
    return sorted(found, key=lambda entry: (entry.stat().st_mtime_ns, entry.name))


@dataclass
class Stability:
    """Remembers each file's (size, mtime) and since when it has not changed."""

    settle: float
    seen: dict[Path, tuple[tuple[int, int], float]] = field(default_factory=dict)

    def ready(self, path: Path, now: float) -> bool:
        stat = path.stat()
        signature = (stat.st_size, stat.st_mtime_ns)
        previous = self.seen.get(path)
        if previous is None or previous[0] != signature:
            self.seen[path] = (signature, now)
            return self.settle <= 0
        return now - previous[1] >= self.settle

    def forget(self, path: Path) -> None:
        self.seen.pop(path, None)


def _target(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{Path(name).stem}-{stamp}{Path(name).suffix}"
    return target


def _move(path: Path, folder: Path, note_suffix: str, note: str) -> Path:
    target = _target(folder, path.name)
    os.replace(path, target)
    target.with_name(target.name + note_suffix).write_text(note + "\n", encoding="utf-8")
    return target


def process_file(services: Services, root: Path, path: Path) -> FileOutcome:
    """Turn one complete file into a letter and move it; never raises for a bad file."""
    before = path.stat()
    data = path.read_bytes()
    after = path.stat()
    if len(data) != after.st_size or before.st_mtime_ns != after.st_mtime_ns:
        return FileOutcome(path, "retry", "still being written")
    zone = ZoneInfo(services.settings.timezone)
    upload = LetterUpload(
        files=[LetterFile(path.name, data)],
        source="hotfolder",
        received_on=datetime.fromtimestamp(after.st_mtime, zone).date(),
        source_ids={"file_name": path.name},
    )
    try:
        accepted = accept_letter(services, upload)
    except ScanRejected as exc:
        note = f"{exc.code}\n{exc.message('fr')}\n{exc.message('ar')}"
        _move(path, root / REJECTED, ".reason.txt", note)
        log.warning("hot folder: %s refused: %s", path.name, exc.code)
        return FileOutcome(path, REJECTED, exc.code)
    except ScanRejectedDate as exc:  # a clock in the future: keep it for a person
        _move(path, root / REJECTED, ".reason.txt", f"invalid_date\n{exc}")
        return FileOutcome(path, REJECTED, "invalid_date")
    _move(path, root / DONE, ".reference.txt", accepted.reference)
    log.info("hot folder: %s is letter %s", path.name, accepted.reference)
    return FileOutcome(path, DONE, accepted.reference)


def _safely(services: Services, root: Path, path: Path) -> FileOutcome:
    try:
        return process_file(services, root, path)
    except (StoreUnavailable, OSError) as exc:
        log.error("hot folder: %s left in place: %s", path.name, type(exc).__name__)
        return FileOutcome(path, "retry", type(exc).__name__)


def watch(services: Services, root: Path, stop: threading.Event, settle: float = 2.0) -> None:
    """Process files as they become complete, until ``stop`` is set."""
    root.mkdir(parents=True, exist_ok=True)
    stability = Stability(settle)
    log.info("watching %s (settle %.1f s)", root, settle)
    while not stop.is_set():
        for path in candidates(root):
            try:
                ready = stability.ready(path, time.monotonic())
            except FileNotFoundError:
                stability.forget(path)
                continue
            if ready and _safely(services, root, path).status != "retry":
                stability.forget(path)
        stop.wait(POLL_INTERVAL)


def import_folder(
    services: Services,
    root: Path,
    on_progress: Callable[[Iterable[Path]], Iterable[Path]] = lambda items: items,
) -> list[FileOutcome]:
    """Process every file in ``root`` once (a backlog); ``on_progress`` wraps the iteration."""
    return [_safely(services, root, path) for path in on_progress(candidates(root))]
