"""Normalizer runners beside an edge under test, as ``intake run`` starts them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.lib.normalize_runner import NormalizeRunner
from gateway.lib.services import Services
from gateway.runner import capture_normalizers
from tests.peers.processes import wait_until


@contextmanager
def running_normalizer(services: Services) -> Iterator[NormalizeRunner]:
    """A runner thread on ``services`` until the block ends."""
    runner = NormalizeRunner(services, capture_normalizers(), name="test-runner")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        services.store.captures.arrived.set()
        thread.join(15)


def settled(services: Services, what: str = "the captured inputs to be normalized") -> None:
    """Wait until no capture is left for a runner."""
    wait_until(lambda: not services.store.captures.backlog(), what)


def normalize_captured(services: Services) -> int:
    """What is captured now, normalized in the caller's thread (no runner thread); how many."""
    runner = NormalizeRunner(services, capture_normalizers(), name="test-inline")
    done = 0
    while claimed := runner.run_once():
        done += claimed
    return done
