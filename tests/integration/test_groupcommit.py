"""The group commit in the real store, on SQLite and on the machine's PostgreSQL.

Callers that arrive while a commit runs share the next transaction; each gets
its own complaint, or its own error: one item's dedup conflict or reference
collision never fails the others. A batch is held open by making its first
blob-folder fsync wait until the other callers have queued, so what forms a
batch is decided by the test, not by thread timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.store import IdempotencyConflict, Store, StoreUnavailable
from gateway.store import blobs as blob_module
from gateway.store.intake import IntakeResult
from gateway.store.tables import ComplaintRow, EvidenceRow, OutboxRow
from normalizer.contract import ComplaintEvent
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.reference import new_reference
from tests.peers.complaints import complaint_input, count_rows, failing_inserts_into, outbox_rows

DEADLINE = 20.0
Outcome = IntakeResult | Exception


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def in_one_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch, inputs: list[tuple[RawInput, ComplaintDraft]]
) -> list[Outcome]:
    """Record ``inputs[0]`` alone, then the rest together in the next transaction."""
    entered, release = threading.Event(), threading.Event()
    real_settle = blob_module.settle

    def settle_after_release(folders: Iterable[Path]) -> None:
        entered.set()
        release.wait(DEADLINE)
        real_settle(folders)

    monkeypatch.setattr("gateway.store.intake.settle", settle_after_release)
    group = store.complaints.group

    def record(item: tuple[RawInput, ComplaintDraft]) -> Outcome:
        try:
            return store.complaints.record_complaint(*item)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        first = pool.submit(record, inputs[0])
        assert entered.wait(DEADLINE), "the first commit never started"
        rest = [pool.submit(record, item) for item in inputs[1:]]
        wait_until(lambda: group.queued == len(inputs) - 1, "the others to queue")
        batches_before = group.batches
        release.set()
        outcomes = [first.result(), *(future.result() for future in rest)]
    assert group.batches - batches_before == 2, "the queued callers were not one batch"
    return outcomes


def created(outcomes: list[Outcome]) -> list[IntakeResult]:
    results = [item for item in outcomes if isinstance(item, IntakeResult)]
    assert all(result.created for result in results)
    return results


def table_counts(store: Store) -> tuple[int, int, int]:
    return tuple(count_rows(store, model) for model in (EvidenceRow, ComplaintRow, OutboxRow))  # type: ignore[return-value]


def test_callers_queued_behind_a_commit_share_the_next_transaction(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = in_one_batch(store, monkeypatch, [complaint_input() for _ in range(8)])

    results = created(outcomes)
    assert len({result.message.reference for result in results}) == 8
    assert table_counts(store) == (8, 8, 8)


def test_each_outbox_row_of_a_batch_carries_its_own_complaint_event(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = created(in_one_batch(store, monkeypatch, [complaint_input() for _ in range(5)]))

    payloads = {row.event_id: row.payload for row in outbox_rows(store)}
    for result in results:
        expected = ComplaintEvent.wrap(result.message, "urn:cashplus:complaints-intake")
        assert payloads[result.message.id] == expected.model_dump_json().encode()


def test_a_reference_drawn_twice_in_one_batch_fails_nobody(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = new_reference()
    draws = iter([new_reference(), taken, taken, *(new_reference() for _ in range(20))])
    lock = threading.Lock()

    def draw() -> str:
        with lock:
            return next(draws)

    monkeypatch.setattr("gateway.store.intake.new_reference", draw)

    outcomes = in_one_batch(store, monkeypatch, [complaint_input() for _ in range(6)])

    results = created(outcomes)
    assert len(results) == 6
    assert len({result.message.reference for result in results}) == 6
    assert table_counts(store) == (6, 6, 6)


def test_a_key_reused_for_another_request_fails_only_its_caller(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.complaints.record_complaint(
        *complaint_input(dedup_key="api:crm:key:K1", request_hash="a" * 64)
    )
    reuse = complaint_input(dedup_key="api:crm:key:K1", request_hash="b" * 64)

    outcomes = in_one_batch(
        store, monkeypatch, [complaint_input(), reuse, complaint_input(), complaint_input()]
    )

    assert isinstance(outcomes[1], IdempotencyConflict)
    assert outcomes[1].existing.id == first.message.id
    assert len(created([outcomes[0], *outcomes[2:]])) == 3
    assert table_counts(store) == (4, 4, 4)


def test_twins_in_one_batch_make_one_complaint(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = complaint_input(dedup_key="twilio:sms:SM1", body="Même SMS")

    outcomes = in_one_batch(store, monkeypatch, [complaint_input(), twin, twin, twin])

    results = [item for item in outcomes if isinstance(item, IntakeResult)]
    assert len({result.message.id for result in results[1:]}) == 1
    assert [result.created for result in results[1:]].count(True) == 1
    assert table_counts(store) == (2, 2, 2)


def test_a_store_failure_fails_every_caller_of_the_batch_and_commits_none(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with failing_inserts_into(store.engine, "outbox"):
        outcomes = in_one_batch(store, monkeypatch, [complaint_input() for _ in range(4)])

    assert all(isinstance(item, StoreUnavailable) for item in outcomes)
    assert table_counts(store) == (0, 0, 0)


def test_record_complaints_keeps_a_bad_items_error_to_itself(store: Store) -> None:
    good = [complaint_input() for _ in range(3)]
    raw, draft = complaint_input()
    unnormalized = (raw, replace(draft, ack_due_at=None))  # the pipeline never ran on it

    outcomes = store.complaints.record_complaints([good[0], unnormalized, *good[1:]])

    assert isinstance(outcomes[1], ValueError)
    assert len(created([outcomes[0], *outcomes[2:]])) == 3
    assert store.complaints.group.batches == 1
    assert table_counts(store) == (3, 3, 3)
