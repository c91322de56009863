"""The complaint store and its outbox, the same tests on SQLite and on the real PostgreSQL.

What every channel relies on: a complaint, its evidence and its outbox row
commit together or not at all; a repeated input finds the first complaint;
references are unique even when writers race or draws collide.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from gateway.store import IdempotencyConflict, Store, StoreUnavailable
from gateway.store.db import migrate
from gateway.store.intake import IntakeResult
from gateway.store.tables import ComplaintRow, EvidenceRow, OutboxRow
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.reference import new_reference
from tests.peers.complaints import (
    complaint_input,
    count_rows,
    failing_inserts_into,
    outbox_rows,
    record,
)


def _table_counts(store: Store) -> tuple[int, int, int]:
    return (
        count_rows(store, EvidenceRow),
        count_rows(store, ComplaintRow),
        count_rows(store, OutboxRow),
    )


def _draw_from(pool: Iterator[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the store draw references from ``pool``; returns the list of draws made."""
    drawn: list[str] = []
    lock = threading.Lock()

    def next_reference() -> str:
        with lock:
            drawn.append(next(pool))
            return drawn[-1]

    monkeypatch.setattr("gateway.store.intake.new_reference", next_reference)
    return drawn


def test_repeated_dedup_key_returns_the_first_complaint(store: Store) -> None:
    first = record(store, dedup_key="email:<abc@example.ma>:uid:7")
    again = record(store, dedup_key="email:<abc@example.ma>:uid:7")

    assert first.created is True
    assert again.created is False
    assert again.message.id == first.message.id
    assert again.message.reference == first.message.reference
    assert _table_counts(store) == (1, 1, 1)


def test_dedup_key_reused_for_another_request_is_an_idempotency_conflict(store: Store) -> None:
    first = record(store, dedup_key="api:client:key:K1", request_hash="a" * 64)

    with pytest.raises(IdempotencyConflict) as conflict:
        record(store, dedup_key="api:client:key:K1", request_hash="b" * 64)

    assert conflict.value.existing.id == first.message.id
    assert _table_counts(store) == (1, 1, 1)


def test_concurrent_writers_get_distinct_references(store: Store) -> None:
    def write_fifty(_worker: int) -> list[IntakeResult]:
        return [record(store) for _ in range(50)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for batch in pool.map(write_fifty, range(8)) for r in batch]

    references = {r.message.reference for r in results}
    assert len(results) == 400
    assert all(r.created for r in results)
    assert len(references) == 400
    assert _table_counts(store) == (400, 400, 400)


def test_reference_collision_is_retried_with_a_fresh_draw(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, free = new_reference(), new_reference()
    _draw_from(iter([taken]), monkeypatch)
    record(store)
    drawn = _draw_from(iter([taken, taken, taken, free]), monkeypatch)

    second = record(store)

    assert second.created is True
    assert second.message.reference == free
    assert drawn == [taken, taken, taken, free]
    # The refused attempts rolled back whole: no evidence row without its complaint.
    assert _table_counts(store) == (2, 2, 2)


def test_colliding_draws_under_concurrency_never_duplicate_a_reference(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every reference is handed out twice: each second copy must hit the
    # unique constraint and be drawn again, whichever thread gets it.
    twice = itertools.chain.from_iterable((ref, ref) for ref in iter(new_reference, None))
    drawn = _draw_from(twice, monkeypatch)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: record(store), range(40)))

    references = [r.message.reference for r in results]
    assert len(set(references)) == 40
    assert len(drawn) - 40 >= 39  # the retries really happened
    assert _table_counts(store) == (40, 40, 40)


def test_store_gives_up_without_writing_when_every_draw_is_taken(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = new_reference()
    _draw_from(iter([taken]), monkeypatch)
    record(store)
    _draw_from(itertools.repeat(taken), monkeypatch)

    with pytest.raises(StoreUnavailable):
        record(store)

    assert _table_counts(store) == (1, 1, 1)


def test_concurrent_identical_dedup_keys_make_exactly_one_complaint(store: Store) -> None:
    inputs = [
        complaint_input(dedup_key="twilio:CallSid:CA123", body="Même appel") for _ in range(8)
    ]
    start = threading.Barrier(len(inputs))

    def submit(item: tuple[RawInput, ComplaintDraft]) -> IntakeResult:
        start.wait()
        return store.complaints.record_complaint(*item)

    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        results = list(pool.map(submit, inputs))

    assert len({r.message.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert _table_counts(store) == (1, 1, 1)


def test_failure_after_the_complaint_insert_leaves_no_complaint_and_no_outbox_row(
    store: Store,
) -> None:
    with failing_inserts_into(store.engine, "outbox"), pytest.raises(StoreUnavailable):
        record(store, dedup_key="letter:upload:U1")

    assert _table_counts(store) == (0, 0, 0)
    # Nothing half-written under the key either: a retry records the complaint.
    assert record(store, dedup_key="letter:upload:U1").created is True


def test_replay_since_queues_published_messages_again_with_the_same_event_id(
    store: Store,
) -> None:
    published = [record(store).message.id for _ in range(2)]
    store.outbox.mark_published([item.id for item in store.outbox.pending(10)])
    never_sent = record(store).message.id

    queued = store.outbox.replay_since(datetime.now(UTC) - timedelta(hours=1))

    rows = outbox_rows(store)
    assert queued == 2
    assert len(rows) == 5
    copies = rows[3:]
    originals = {row.event_id: row for row in rows[:3]}
    assert [row.event_id for row in copies] == published
    for copy in copies:
        assert copy.published_at is None
        assert copy.payload == originals[copy.event_id].payload
        assert copy.routing_key == originals[copy.event_id].routing_key
    assert [item.event_id for item in store.outbox.pending(10)] == [never_sent, *published]


def test_replay_since_a_later_time_queues_nothing(store: Store) -> None:
    record(store)
    store.outbox.mark_published([item.id for item in store.outbox.pending(10)])

    assert store.outbox.replay_since(datetime.now(UTC) + timedelta(minutes=1)) == 0
    assert store.outbox.pending(10) == []


def test_migrations_run_twice_harmlessly(store: Store) -> None:
    kept = record(store).message
    tables = set(inspect(store.engine).get_table_names())

    migrate(store.engine)
    migrate(store.engine)

    assert set(inspect(store.engine).get_table_names()) == tables
    assert store.complaints.get_by_reference(kept.reference) == kept
    assert record(store).created is True
