"""Where a message's DATA waits while it arrives: memory first, a file past a threshold (S10).

sending MTA --DATA lines--> ``channels.email.smtp`` --> **DataSpool** (bytes in
memory up to ``smtp_spool_threshold_bytes``, then a file under
``<data_dir>/smtp-spool/``) --> one ``read()`` by the ingest thread --> the
pipeline (which takes bytes).

So a session costs at most the threshold in memory while its client sends,
however big the message and however slow the client; the whole message is in
memory only in the ingest threads (at most ``MAX_INGEST_THREADS`` at once),
once. The running sha256, size and first bytes let a refused message be
quarantined as its head without reading it back.

Spool files are named ``data-*.eml`` and removed when the session is done
with them; ``sweep`` removes those a killed process left behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("intake.smtp")

SPOOL_FOLDER = "smtp-spool"
PREFIX = "data-"
SUFFIX = ".eml"
# A spool file older than this belongs to no session alive (the idle timeout is far shorter).
STALE_SECONDS = 24 * 3600
_FILE_BUFFER = 64 * 1024


class DataSpool:
    """The bytes of one DATA, in memory up to ``threshold``, then in a file of ``folder``."""

    def __init__(self, folder: Path, threshold: int, head_bytes: int) -> None:
        self.folder = folder
        self.threshold = threshold
        self.head_bytes = head_bytes
        self.size = 0
        self.path: Path | None = None
        self.head = bytearray()
        self._memory = bytearray()
        self._file: BinaryIO | None = None
        self._sha256 = hashlib.sha256()
        self._lock = threading.Lock()
        self._closed = False

    def write(self, data: bytes | bytearray) -> None:
        self.size += len(data)
        self._sha256.update(data)
        if len(self.head) < self.head_bytes:
            self.head += data[: self.head_bytes - len(self.head)]
        if self._file is not None:
            self._file.write(data)
            return
        self._memory += data
        if len(self._memory) > self.threshold:
            self._to_file()

    def _to_file(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=PREFIX, suffix=SUFFIX, dir=self.folder)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b", buffering=_FILE_BUFFER)
        self._file.write(self._memory)
        self._memory = bytearray()  # freed, not merely emptied

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def spooled(self) -> bool:
        """Whether the bytes are in a file (past the threshold)."""
        return self._file is not None

    def read(self) -> bytes:
        """The whole message, as one ``bytes``; the spool's own copy is released."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the spool was closed before it was read")
            if self._file is None:
                data = bytes(self._memory)
                self._memory = bytearray()
                return data
            self._file.flush()
            self._file.seek(0)
            return self._file.read()

    def close(self) -> None:
        """Forget the bytes and remove the file; harmless when called again."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._memory = bytearray()
            if self._file is not None:
                self._file.close()
                self._file = None
            if self.path is not None:
                self.path.unlink(missing_ok=True)


def spool_folder(data_dir: Path) -> Path:
    return data_dir / SPOOL_FOLDER


def sweep(folder: Path, now: float | None = None) -> int:
    """Remove spool files a killed process left (older than a day); how many.

    Several receivers may share the folder (``SO_REUSEPORT``): a file of a
    session alive is never that old, and is still readable by its session
    through its open descriptor anyway.
    """
    if not folder.is_dir():
        return 0
    limit = (now if now is not None else time.time()) - STALE_SECONDS
    removed = 0
    for path in folder.glob(f"{PREFIX}*{SUFFIX}"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except OSError:
            continue
    if removed:
        log.warning("removed %s spool files left by an earlier run", removed)
    return removed
