"""The store's wait for SQLite's write lock is bounded: a locked database is our failure, soon.

Another process holds the write lock (``BEGIN EXCLUSIVE`` on a connection of
its own, as a stuck migration or a backup tool would): a complaint is refused
with ``StoreUnavailable`` after ``store_lock_timeout``, not after minutes, and
is recorded once the lock is gone. Writers of the same process wait for each
other within the same bound, and callers queued behind a batch that waits
for the lock wait only what is left of their own time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from config.settings import load_settings
from gateway.store import Store, StoreUnavailable, open_store
from gateway.store.db import (
    MIGRATION_LOCK_TIMEOUT,
    WriteLockTimeout,
    committing,
    create_store_engine,
    lock_timeout,
    migrate,
    writing,
)
from gateway.store.tables import ComplaintRow
from tests.peers.complaints import complaint_input, count_rows

# Far above the lock timeouts used here, far below the 30 s a write used to wait.
ANSWER_BOUND = 10.0


def open_test_store(data_dir: Path, timeout: float) -> Store:
    return open_store(load_settings(data_dir=data_dir, store_lock_timeout=timeout))


@contextmanager
def locked_by_another_process(database: Path) -> Iterator[None]:
    """The write lock held by a connection that is not the store's."""
    locker = sqlite3.connect(database, timeout=ANSWER_BOUND, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


class WriteWaits:
    """SQLite's own busy timeout (ms) as each write transaction begins, read from SQLite."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[int] = []
        self.began = threading.Event()
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            (busy_ms,) = conn.connection.dbapi_connection.execute("PRAGMA busy_timeout").fetchone()
            self.seen.append(int(busy_ms))
            self.began.set()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + ANSWER_BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_a_locked_database_refuses_the_complaint_after_the_lock_timeout_then_takes_it(
    data_dir: Path,
) -> None:
    store = open_test_store(data_dir, timeout=0.3)
    raw, draft = complaint_input()
    try:
        with locked_by_another_process(data_dir / "intake.db"):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.complaints.record_complaint(raw, draft)
            assert time.monotonic() - started < ANSWER_BOUND
        assert count_rows(store, ComplaintRow) == 0
        assert store.complaints.record_complaint(raw, draft).created
        assert count_rows(store, ComplaintRow) == 1
    finally:
        store.close()


def test_a_writer_gives_up_when_another_writer_of_the_process_keeps_the_lock(
    data_dir: Path,
) -> None:
    store = open_test_store(data_dir, timeout=0.2)
    holding, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with writing(store.engine):
            holding.set()
            done.wait(ANSWER_BOUND)

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            holder = pool.submit(hold_the_lock)
            assert holding.wait(ANSWER_BOUND)
            try:
                with pytest.raises(WriteLockTimeout), committing(store.engine):
                    pass
                with pytest.raises(StoreUnavailable):
                    store.complaints.record_complaint(*complaint_input())
            finally:
                done.set()
            holder.result()
        assert store.complaints.record_complaint(*complaint_input()).created
    finally:
        store.close()


def test_a_write_past_its_deadline_is_still_tried_once_without_waiting(data_dir: Path) -> None:
    store = open_test_store(data_dir, timeout=0.2)
    try:
        with committing(store.engine, lock_wait=0) as connection:
            connection.execute(text("CREATE TABLE scratch (n INTEGER)"))
        with (
            locked_by_another_process(data_dir / "intake.db"),
            pytest.raises(OperationalError, match="database is locked"),
            committing(store.engine, lock_wait=0) as connection,
        ):
            connection.execute(text("INSERT INTO scratch VALUES (1)"))
    finally:
        store.close()


def test_callers_queued_behind_a_batch_waiting_for_the_lock_wait_only_what_is_left(
    data_dir: Path,
) -> None:
    """The batch behind asks SQLite for less than a whole lock timeout: its callers queued
    while the first batch waited, and their time runs from then."""
    store = open_test_store(data_dir, timeout=2.0)
    waits = WriteWaits(store.engine)
    group = store.complaints.group

    def record() -> Exception | None:
        try:
            store.complaints.record_complaint(*complaint_input())
        except Exception as exc:
            return exc
        return None

    try:
        with locked_by_another_process(data_dir / "intake.db"), ThreadPoolExecutor(3) as pool:
            first = pool.submit(record)
            assert waits.began.wait(ANSWER_BOUND), "the first batch never began"
            behind = [pool.submit(record) for _ in range(2)]
            wait_for(lambda: group.queued == 2, "two callers queued behind the first batch")
            outcomes = [first.result(), *(future.result() for future in behind)]
        assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes), outcomes
        assert group.batches == 2, "the two callers behind were not one batch"
        first_wait, second_wait = waits.seen[-2:]
        assert first_wait == 2000
        assert second_wait < first_wait
    finally:
        store.close()


def test_migrations_wait_longer_than_requests_for_a_lock_held_briefly(tmp_path: Path) -> None:
    database = tmp_path / "intake.db"
    setup = sqlite3.connect(database)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.close()
    engine = create_store_engine(f"sqlite:///{database}", lock_timeout=0.1)
    assert lock_timeout(engine) < 1.0 < MIGRATION_LOCK_TIMEOUT
    locker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.0, lambda: locker.execute("ROLLBACK"))
    release.start()
    try:
        migrate(engine)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM alembic_version")) >= 1
    finally:
        release.join()
        locker.close()
        engine.dispose()
