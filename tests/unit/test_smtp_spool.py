"""The SMTP DATA spool (S10): memory up to a threshold, a file past it, nothing left after."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from channels.email.spool import DataSpool, sweep

pytestmark = pytest.mark.unit


def test_a_small_message_stays_in_memory(tmp_path: Path) -> None:
    spool = DataSpool(tmp_path, threshold=1024, head_bytes=8)
    spool.write(b"Subject: x\r\n\r\nshort\r\n")
    assert not spool.spooled and not any(tmp_path.iterdir())
    assert spool.read() == b"Subject: x\r\n\r\nshort\r\n"
    assert bytes(spool.head) == b"Subject:"
    spool.close()


def test_past_the_threshold_the_bytes_go_to_a_file_removed_on_close(tmp_path: Path) -> None:
    spool = DataSpool(tmp_path, threshold=1024, head_bytes=16)
    lines = [b"line %04d of the message\r\n" % index for index in range(500)]
    for line in lines:
        spool.write(line)
    assert spool.spooled and spool.path is not None and spool.path.parent == tmp_path
    assert spool.read() == b"".join(lines)
    assert spool.size == len(b"".join(lines))
    assert bytes(spool.head) == lines[0][:16]
    spool.close()
    spool.close()  # harmless again
    assert not any(tmp_path.iterdir())
    with pytest.raises(RuntimeError):
        spool.read()


def test_sweep_removes_only_files_a_dead_process_left(tmp_path: Path) -> None:
    old, fresh, other = tmp_path / "data-old.eml", tmp_path / "data-new.eml", tmp_path / "x.txt"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    assert sweep(tmp_path) == 1
    assert not old.exists() and fresh.exists() and other.exists()
