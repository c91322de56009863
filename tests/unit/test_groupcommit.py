"""The group commit on its own: batching, one outcome per caller, errors kept apart.

No database here: the commit function records the batches it was given, and
a gate holds the first batch until the others have queued behind it, so the
batching is decided by the test, not by thread timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from gateway.store.groupcommit import GroupCommit

DEADLINE = 10.0


class Recorder:
    """A commit function: doubles each item, fails the items listed, holds the first batch."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.failing = failing
        self.gate = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            assert self.gate.wait(DEADLINE), "the test never opened the gate"
        return [ValueError(f"item {item}") if item in self.failing else item * 2 for item in items]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def submit_while_held(
    group: GroupCommit[int, int], recorder: Recorder, items: list[int]
) -> list[int | Exception]:
    """Item 0 starts a batch that waits; the others queue, then the gate opens."""

    def one(item: int) -> int | Exception:
        try:
            return group.submit(item)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        first = pool.submit(one, items[0])
        wait_until(lambda: len(recorder.batches) == 1, "the first batch")
        rest = [pool.submit(one, item) for item in items[1:]]
        wait_until(lambda: group.queued == len(items) - 1, "the others to queue")
        recorder.gate.set()
        return [first.result(), *(future.result() for future in rest)]


def test_callers_arriving_during_a_commit_share_the_next_one() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder)

    results = submit_while_held(group, recorder, list(range(8)))

    assert results == [item * 2 for item in range(8)]
    assert [sorted(batch) for batch in recorder.batches] == [[0], list(range(1, 8))]


def test_one_items_error_reaches_only_its_caller() -> None:
    recorder = Recorder(failing=frozenset({3}))
    group = GroupCommit(recorder)

    results = submit_while_held(group, recorder, list(range(6)))

    assert isinstance(results[3], ValueError)
    assert [result for index, result in enumerate(results) if index != 3] == [0, 2, 4, 8, 10]


def test_a_failed_commit_fails_its_batch_and_the_next_caller_commits() -> None:
    calls: list[list[int]] = []

    def commit(items: Sequence[int]) -> list[int | Exception]:
        calls.append(list(items))
        if len(calls) == 1:
            raise OSError("disk full")
        return list(items)

    group = GroupCommit(commit)

    with pytest.raises(OSError, match="disk full"):
        group.submit(1)
    assert group.submit(2) == 2


def test_batches_are_capped_at_max_batch() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder, max_batch=3)

    results = submit_while_held(group, recorder, list(range(8)))

    assert results == [item * 2 for item in range(8)]
    assert [len(batch) for batch in recorder.batches] == [1, 3, 3, 1]


def test_submit_many_commits_together_and_returns_errors_in_order() -> None:
    recorder = Recorder(failing=frozenset({2}))
    recorder.gate.set()
    group = GroupCommit(recorder)

    outcomes = group.submit_many([1, 2, 3])

    assert outcomes[0] == 2 and outcomes[2] == 6
    assert isinstance(outcomes[1], ValueError)
    assert recorder.batches == [[1, 2, 3]]


def test_a_full_batch_does_not_wait_out_the_window() -> None:
    recorder = Recorder()
    recorder.gate.set()
    group = GroupCommit(recorder, window=DEADLINE, max_batch=1)

    started = time.monotonic()
    assert group.submit(21) == 42

    assert time.monotonic() - started < DEADLINE / 2


def test_a_window_gathers_callers_that_arrive_within_it() -> None:
    recorder = Recorder()
    recorder.gate.set()
    group = GroupCommit(recorder, window=DEADLINE, max_batch=4)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(group.submit, range(4)))

    assert results == [0, 2, 4, 6]
    assert [sorted(batch) for batch in recorder.batches] == [[0, 1, 2, 3]]
