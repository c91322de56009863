"""A small filesystem of its own, to make the store's disk full on purpose.

``small_filesystem`` mounts a tmpfs of a few megabytes (root only, as on
the project's machines) on a fresh temp dir and unmounts it afterwards;
the gateway's data dir goes there. ``fill`` writes a file until the kernel
answers ENOSPC, ``Filler.release`` deletes it: the disk is full, then it is
not. Nothing outside the mount is touched.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

_CHUNK = 64 * 1024


def require_root_mount() -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.fail("a small tmpfs needs root and mount(8), as on the project's machines")


@contextmanager
def small_filesystem(size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted for the block; its contents vanish with it."""
    require_root_mount()
    mountpoint = Path(tempfile.mkdtemp(prefix="smallfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
        check=True,
        capture_output=True,
    )
    try:
        yield mountpoint
    finally:
        done = subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False)
        if done.returncode != 0:  # a straggler still holds a file: detach now, free later
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)
        mountpoint.rmdir()


@dataclass
class Filler:
    path: Path

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def fill(folder: Path) -> Filler:
    """Write into ``folder`` until its filesystem is full; the file is the filler."""
    path = folder / "filler.bin"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Big writes first, then smaller ones, so not even a page is left.
        for size in (_CHUNK, 4096, 1):
            block = b"\0" * size
            while _write(descriptor, block):
                pass
    finally:
        os.close(descriptor)
    return Filler(path)


def _write(descriptor: int, block: bytes) -> bool:
    try:
        return os.write(descriptor, block) > 0
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
