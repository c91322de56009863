import hashlib
from pathlib import Path

from gateway.store.blobs import BlobStore


def test_blob_is_named_by_its_hash_and_read_back(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = "شكاية: flousi ma wslouch".encode()
    stored = store.put(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.location == f"blob:sha256:{stored.sha256}"
    assert store.get(stored.location) == data


def test_storing_twice_keeps_one_file_and_no_temporaries(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.put(b"same bytes")
    second = store.put(b"same bytes")
    assert first == second
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert files == [store.path_for(first.sha256)]
