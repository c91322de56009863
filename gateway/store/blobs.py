"""Content-addressed blob store for raw evidence and attachments.

Every byte a customer sent (an e-mail as received, a scan, a recording, an
API request body) is kept here before anything is acknowledged. Files are
named by their sha256, so storing the same input twice costs nothing and a
stored file can always be checked against the hash in the message.

A write goes to a temporary file in the destination folder, is fsynced and
renamed into place (``stage``); the folder is then fsynced (``settle``).
``put`` does both: after it returns, the bytes survive a power cut. The
group commit (``gateway.store.groupcommit``) stages each caller's blobs in
the caller's thread and settles the folders of a whole batch once, before
the rows that point at them commit.

Many at once (a runner's batch, an IMAP fetch): an fsync costs a flush of
the disk's cache whatever it carries (about 3 ms here, even for a folder
that did not change), so a batch of a hundred blobs in a hundred folders
would cost two hundred of them. From ``SYNC_FILESYSTEM_FROM`` files or
folders on, the same guarantees come from ``syncfs(2)`` on the blob store's
file system instead: once for the batch's bytes (before any is renamed into
place), once for the folders (before any row points at them). Where the call
does not exist, each file and folder is fsynced as before.

Layout: ``root/ab/<sha256>``, 256 fan-out folders made (and fsynced) once,
so a new blob never costs a new folder. Blobs written before this layout
live in ``root/ab/cd/<sha256>``; they are found there, and ``migrate_layout``
(``intake migrate --blobs``) moves them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from normalizer.contract import Attachment, Evidence
from normalizer.draft import AttachmentDraft
from normalizer.errors import OurFailure

SCHEME = "blob:sha256:"
# Blobs are written read-only: evidence is never changed in place.
READ_ONLY = 0o444
_CHUNK = 1024 * 1024
# From this many files (or folders) on, one syncfs instead of one fsync each.
SYNC_FILESYSTEM_FROM = 4


class BlobMissing(OurFailure, FileNotFoundError):
    """No blob under this hash (a ``FileNotFoundError`` too, as before the check existed)."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob {sha256} is missing")
        self.sha256 = sha256


class BlobChanged(OurFailure):
    """The bytes under a blob's name no longer hash to it: the evidence was changed."""

    def __init__(self, sha256: str, actual: str) -> None:
        super().__init__(f"blob {sha256} was changed: its bytes now hash to {actual}")
        self.retryable = False
        self.sha256 = sha256
        self.actual = actual


_FANOUT = tuple(f"{index:02x}" for index in range(256))


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    location: str  # "blob:sha256:<hex>", what messages carry


@dataclass(frozen=True)
class StagedBlob:
    """Bytes fsynced under their final name; the folder entry is durable after ``settle``."""

    blob: StoredBlob
    folder: Path


class BlobStore:
    """Files under ``root/ab/<sha256>`` (older ones under ``root/ab/cd/<sha256>``); immutable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._layout_ready = False
        self._layout_lock = threading.Lock()

    # -- where a blob is ------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        """Where the blob is: its current place, or the legacy one if only that exists."""
        current = self._current_path(sha256)
        if current.exists():
            return current
        legacy = self._legacy_path(sha256)
        # Neither: not stored, or moved here by ``migrate_layout`` between the two looks.
        return legacy if legacy.exists() else current

    def _current_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _legacy_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def get(self, location_or_sha: str) -> bytes:
        """The blob's bytes, checked against its name (``BlobChanged``, ``BlobMissing``)."""
        digest = location_or_sha.removeprefix(SCHEME)
        data = self._read(digest)
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise BlobChanged(digest, actual)
        return data

    def _read(self, digest: str) -> bytes:
        try:
            return self._current_path(digest).read_bytes()
        except FileNotFoundError:
            pass
        try:
            return self._legacy_path(digest).read_bytes()
        except FileNotFoundError:
            pass
        try:
            # Moved by a layout migration while we looked.
            return self._current_path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(digest) from None

    def check(self, location_or_sha: str) -> None:
        """Hash the blob in chunks (a recording may be large): ``BlobChanged``, ``BlobMissing``."""
        digest = location_or_sha.removeprefix(SCHEME)
        running = hashlib.sha256()
        try:
            with self.path_for(digest).open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    running.update(chunk)
        except FileNotFoundError:
            raise BlobMissing(digest) from None
        if running.hexdigest() != digest:
            raise BlobChanged(digest, running.hexdigest())

    def exists(self, location_or_sha: str) -> bool:
        digest = location_or_sha.removeprefix(SCHEME)
        return self.path_for(digest).exists()

    def remove(self, location_or_sha: str) -> bool:
        """Delete a blob (retention purge, erasure: recorded in the evidence log first).

        Returns whether a file was there; the folder is fsynced, so the removal survives.
        """
        digest = location_or_sha.removeprefix(SCHEME)
        found = False
        for path in (self._current_path(digest), self._legacy_path(digest)):
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            found = True
            settle([path.parent])
        return found

    # -- writing --------------------------------------------------------------
    def put(self, data: bytes) -> StoredBlob:
        """Store ``data`` durably (file and folder fsynced) and say where it is."""
        staged = self.stage(data)
        settle([staged.folder])
        return staged.blob

    def stage(self, data: bytes) -> StagedBlob:
        """Write and fsync the bytes under their final name; ``settle`` the folder before use."""
        return self.stage_many([data])[0]

    def stage_many(self, items: Sequence[bytes]) -> list[StagedBlob]:
        """``stage`` for several blobs: all written first, then all fsynced.

        The first fsync's journal commit carries every file written before
        it, so the others find little left to flush (an IMAP batch).
        """
        staged: list[StagedBlob] = []
        pending: list[tuple[BinaryIO, str, Path]] = []
        try:
            for data in items:
                digest = hashlib.sha256(data).hexdigest()
                target = self._current_path(digest)
                blob = StoredBlob(sha256=digest, size=len(data), location=SCHEME + digest)
                # Settled even when the file is there: a concurrent writer may
                # not have fsynced the folder yet.
                staged.append(StagedBlob(blob, target.parent))
                if _holds(target, len(data)) or _holds(self._legacy_path(digest), len(data)):
                    continue
                self.ensure_layout()
                pending.append(_write_unsynced(target, data))
            # The bytes on disk before any name points at them.
            if len(pending) < SYNC_FILESYSTEM_FROM or not sync_filesystem(self.root):
                for stream, _temp, _target in pending:
                    os.fsync(stream.fileno())
            while pending:
                stream, temp, target = pending[0]
                stream.close()
                os.replace(temp, target)
                pending.pop(0)
        finally:
            for stream, temp, _target in pending:  # not renamed: a failure on the way
                stream.close()
                Path(temp).unlink(missing_ok=True)
        return staged

    def ensure_layout(self) -> None:
        """Make the 256 fan-out folders that do not exist yet (looked at once per process)."""
        if self._layout_ready:
            return
        with self._layout_lock:
            # An old-layout store has some ab/ folders, not necessarily all 256.
            missing = [folder for folder in self._fanout_folders() if not folder.is_dir()]
            for folder in missing:
                folder.mkdir(parents=True, exist_ok=True)
            if missing:
                # New folders reach the disk once, here, not with each blob.
                settle([self.root, self.root.parent])
            self._layout_ready = True

    def _fanout_folders(self) -> Iterator[Path]:
        return (self.root / name for name in _FANOUT)

    # -- one-time move of blobs stored before the 256-folder layout -----------
    def migrate_layout(self) -> int:
        """Move ``ab/cd/<sha>`` blobs to ``ab/<sha>``; returns how many moved. Safe to rerun."""
        self.ensure_layout()
        moved = 0
        for fanout in self._fanout_folders():
            legacy_folders = [entry for entry in fanout.iterdir() if entry.is_dir()]
            for legacy in legacy_folders:
                moved += _move_blobs(legacy, fanout)
            if legacy_folders:
                settle([fanout])
                for legacy in legacy_folders:
                    _remove_if_empty(legacy)
                settle([fanout])
        return moved


def settle(folders: Iterable[Path]) -> None:
    """fsync each distinct folder once, so the entries renamed into it survive a power cut.

    Many folders of one file system (a batch's blobs): one ``syncfs`` for all.
    """
    distinct = list(dict.fromkeys(folders))
    if (
        len(distinct) >= SYNC_FILESYSTEM_FROM
        and len({folder.stat().st_dev for folder in distinct}) == 1
        and sync_filesystem(distinct[0])
    ):
        return
    for folder in distinct:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def sync_filesystem(path: Path) -> bool:
    """``syncfs(2)``: every file and folder entry written on ``path``'s file system is on disk.

    False where the C library has no such call (not Linux): the caller
    fsyncs each file and folder instead.
    """
    call = _syncfs()
    if call is None:
        return False
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if call(descriptor) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number), str(path))
    finally:
        os.close(descriptor)
    return True


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs  # releases the GIL while it waits
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _holds(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _write_unsynced(target: Path, data: bytes) -> tuple[BinaryIO, str, Path]:
    """The bytes in a temporary file beside ``target``, written but neither fsynced nor renamed."""
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    stream = os.fdopen(handle, "wb")
    try:
        os.fchmod(handle, READ_ONLY)  # the open handle still writes
        stream.write(data)
        stream.flush()
    except BaseException:
        stream.close()
        Path(temp_name).unlink(missing_ok=True)
        raise
    return stream, temp_name, target


def _move_blobs(legacy: Path, fanout: Path) -> int:
    moved = 0
    for path in legacy.iterdir():
        if path.name.startswith(".incoming-"):
            continue  # an interrupted write of the old layout: never referenced
        # rename within one file system: the blob is always at one of its two places.
        os.replace(path, fanout / path.name)
        moved += 1
    return moved


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # a leftover temporary file: harmless, kept
        folder.rmdir()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unstored_evidence(raw: bytes, content_type: str, **ids: str | None) -> Evidence:
    """The evidence of ``raw`` as the store would describe it once stored (for previews)."""
    digest = sha256_hex(raw)
    return Evidence(
        stored_at=SCHEME + digest, sha256=digest, size=len(raw), content_type=content_type, **ids
    )


def unstored_attachment(item: AttachmentDraft) -> Attachment:
    """An attachment as the store would describe it, pointing at the blob it would be."""
    digest = hashlib.sha256(item.data).hexdigest()
    return Attachment(
        name=item.name,
        content_type=item.content_type or "application/octet-stream",
        declared_type=item.declared_type,
        size=len(item.data),
        sha256=digest,
        stored_at=SCHEME + digest,
        ocr_text=item.ocr_text,
    )
