"""The blob layout of the group commit: 256 fan-out folders, old ``ab/cd/`` blobs still found.

New blobs go to ``root/ab/<sha256>`` in folders made once, so a batch
fsyncs folders that already exist instead of making two new ones per blob.
Evidence written before the change stays readable where it is, and
``migrate_layout`` moves it. A batch of many blobs costs two ``syncfs``
calls, not an fsync per file and per folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gateway.store import blobs
from gateway.store.blobs import SCHEME, SYNC_FILESYSTEM_FROM, BlobStore, settle


def legacy_blob(root: Path, data: bytes) -> Path:
    """A blob as the earlier layout wrote it: ``root/ab/cd/<sha256>``."""
    digest = hashlib.sha256(data).hexdigest()
    path = root / digest[:2] / digest[2:4] / digest
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


def test_new_blob_lives_one_folder_below_the_root(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)

    stored = store.put(b"salam, flousi ma wslouch")

    assert store.path_for(stored.sha256) == tmp_path / stored.sha256[:2] / stored.sha256
    assert store.path_for(stored.sha256).read_bytes() == b"salam, flousi ma wslouch"


def test_all_fan_out_folders_exist_after_the_first_blob(tmp_path: Path) -> None:
    BlobStore(tmp_path).put(b"first")

    folders = sorted(path.name for path in tmp_path.iterdir() if path.is_dir())
    assert folders == [f"{n:02x}" for n in range(256)]


def test_a_store_of_the_old_layout_gets_every_fan_out_folder(tmp_path: Path) -> None:
    legacy_blob(tmp_path, b"written by the old layout")  # makes one ab/ folder only
    store = BlobStore(tmp_path)

    stored = store.put(b"written by the new layout")

    assert store.get(stored.location) == b"written by the new layout"
    assert len([path for path in tmp_path.iterdir() if path.is_dir()]) == 256


def test_blob_of_the_old_layout_is_read_where_it_is(tmp_path: Path) -> None:
    old = legacy_blob(tmp_path, "شكاية قديمة".encode())
    store = BlobStore(tmp_path)

    assert store.get(SCHEME + old.name) == "شكاية قديمة".encode()
    assert store.exists(old.name)
    assert store.path_for(old.name) == old


def test_storing_bytes_already_kept_in_the_old_layout_writes_no_copy(tmp_path: Path) -> None:
    old = legacy_blob(tmp_path, b"already here")
    store = BlobStore(tmp_path)

    stored = store.put(b"already here")

    assert stored.sha256 == old.name
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == [old]


def test_migrate_layout_moves_old_blobs_and_they_stay_readable(tmp_path: Path) -> None:
    olds = [legacy_blob(tmp_path, f"lettre {n}".encode()) for n in range(3)]
    store = BlobStore(tmp_path)

    moved = store.migrate_layout()

    assert moved == 3
    for old, n in zip(olds, range(3), strict=True):
        assert not old.exists() and not old.parent.exists()
        assert store.path_for(old.name) == tmp_path / old.name[:2] / old.name
        assert store.get(old.name) == f"lettre {n}".encode()


def test_migrate_layout_twice_moves_nothing_the_second_time(tmp_path: Path) -> None:
    legacy_blob(tmp_path, b"once")
    store = BlobStore(tmp_path)
    store.migrate_layout()

    assert store.migrate_layout() == 0


class SyncCalls:
    """How often the store flushed the disk, and how (``os.fsync`` vs ``syncfs``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, syncfs: bool = True) -> None:
        self.fsyncs = 0
        self.syncfs = 0
        real_fsync = os.fsync

        def fsync(descriptor: int) -> None:
            self.fsyncs += 1
            real_fsync(descriptor)

        def sync_filesystem(path: Path) -> bool:
            if not syncfs:
                return False
            self.syncfs += 1
            assert real_sync_filesystem(path)
            return True

        real_sync_filesystem = blobs.sync_filesystem
        monkeypatch.setattr(blobs.os, "fsync", fsync)
        monkeypatch.setattr(blobs, "sync_filesystem", sync_filesystem)


def many(count: int) -> list[bytes]:
    return [f"réclamation {index}".encode() for index in range(count)]


def test_a_batch_of_blobs_is_made_durable_by_two_file_system_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path)
    store.ensure_layout()
    calls = SyncCalls(monkeypatch)

    staged = store.stage_many(many(50))
    settle(stage.folder for stage in staged)

    # One for the bytes before their names, one for the names: no fsync per file or folder.
    assert (calls.syncfs, calls.fsyncs) == (2, 0)
    assert [store.get(stage.blob.location) for stage in staged] == many(50)
    assert not list(tmp_path.glob("*/.incoming-*"))


def test_a_few_blobs_are_fsynced_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path)
    store.ensure_layout()
    calls = SyncCalls(monkeypatch)

    staged = store.stage_many(many(SYNC_FILESYSTEM_FROM - 1))
    settle(stage.folder for stage in staged)

    folders = len({stage.folder for stage in staged})
    assert (calls.syncfs, calls.fsyncs) == (0, SYNC_FILESYSTEM_FROM - 1 + folders)


def test_without_syncfs_every_file_and_folder_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path)
    store.ensure_layout()
    calls = SyncCalls(monkeypatch, syncfs=False)

    staged = store.stage_many(many(20))
    settle(stage.folder for stage in staged)

    folders = len({stage.folder for stage in staged})
    assert (calls.syncfs, calls.fsyncs) == (0, 20 + folders)
    assert [store.get(stage.blob.location) for stage in staged] == many(20)
