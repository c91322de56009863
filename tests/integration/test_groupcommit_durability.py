"""Nothing acknowledged is lost when the process dies in the middle of group commits.

A child process records complaints from eight threads (so commits are
batched) and prints each reference the moment ``record_complaint`` returned
it, which is when a channel would answer 250 or 201. It is SIGKILLed while
busy. Every reference it printed must then be in the store with its outbox
row and its evidence blob, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from config.settings import load_settings
from gateway.store import open_store
from gateway.store.db import reading
from gateway.store.tables import OutboxRow

ROOT = Path(__file__).resolve().parents[2]
ACKNOWLEDGED_BEFORE_KILL = 60
DEADLINE = 60.0

CHILD = """
import sys, threading
from sqlalchemy import select

from config.settings import load_settings
from gateway.store import open_store
from tests.peers.complaints import complaint_input

store = open_store(load_settings(data_dir=sys.argv[1]))
lock = threading.Lock()

def work() -> None:
    while True:
        raw, draft = complaint_input()
        result = store.complaints.record_complaint(raw, draft)
        with lock:
            print(result.message.reference, result.message.evidence.sha256, flush=True)

threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
for thread in threads:
    thread.start()
threads[0].join()
"""


def acknowledged_then_killed(data_dir: Path) -> list[tuple[str, str]]:
    """Run the child until it acknowledged enough, SIGKILL it; what it printed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEADLINE
    try:
        while len(lines) < ACKNOWLEDGED_BEFORE_KILL:
            assert time.monotonic() < deadline, f"only {len(lines)} complaints acknowledged"
            line = child.stdout.readline()
            assert line, f"the child exited with {child.poll()}"
            lines.append(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        lines += child.stdout.readlines()  # printed before the kill, read after it
        child.wait(timeout=DEADLINE)
        child.stdout.close()
    return [(reference, sha) for reference, sha in (line.split() for line in lines)]


def test_every_complaint_acknowledged_before_a_sigkill_is_in_the_store(data_dir: Path) -> None:
    acknowledged = acknowledged_then_killed(data_dir)

    store = open_store(load_settings(data_dir=data_dir))
    try:
        with reading(store.engine) as session:
            queued = set(session.scalars(select(OutboxRow.complaint_id)))
        for reference, sha in acknowledged:
            message = store.complaints.get_by_reference(reference)
            assert message is not None, f"{reference} was acknowledged, then lost"
            assert message.id in queued, f"{reference} has no outbox row"
            assert hashlib.sha256(store.blobs.get(sha)).hexdigest() == sha
    finally:
        store.close()
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
