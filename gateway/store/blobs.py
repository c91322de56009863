"""Content-addressed blob store for raw evidence and attachments.

Every byte a customer sent (an e-mail as received, a scan, a recording, an
API request body) is kept here before anything is acknowledged. Files are
named by their sha256, so storing the same input twice costs nothing and a
stored file can always be checked against the hash in the message.

A write goes to a temporary file in the destination folder, is fsynced,
renamed into place, and the folder is fsynced: after ``put`` returns, the
bytes survive a power cut.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCHEME = "blob:sha256:"


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    location: str  # "blob:sha256:<hex>", what messages carry


class BlobStore:
    """Files under ``root/ab/cd/<sha256>``; immutable once written."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not (target.exists() and target.stat().st_size == len(data)):
            self._write_durably(target, data)
        return StoredBlob(sha256=digest, size=len(data), location=SCHEME + digest)

    def get(self, location_or_sha: str) -> bytes:
        digest = location_or_sha.removeprefix(SCHEME)
        return self.path_for(digest).read_bytes()

    def exists(self, location_or_sha: str) -> bool:
        return self.path_for(location_or_sha.removeprefix(SCHEME)).exists()

    def _write_durably(self, target: Path, data: bytes) -> None:
        folder = target.parent
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            # New folders must reach the disk too, or the file could vanish
            # with the directory entry that leads to it.
            _fsync_dir(folder.parent)
            _fsync_dir(folder.parent.parent)
        handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
