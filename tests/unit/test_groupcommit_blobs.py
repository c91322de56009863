"""The blob layout of the group commit: 256 fan-out folders, old ``ab/cd/`` blobs still found.

New blobs go to ``root/ab/<sha256>`` in folders made once, so a batch
fsyncs folders that already exist instead of making two new ones per blob.
Evidence written before the change stays readable where it is, and
``migrate_layout`` moves it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gateway.store.blobs import SCHEME, BlobStore


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
