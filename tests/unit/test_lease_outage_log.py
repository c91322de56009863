"""A store outage seen by the lease keeper is one warning, then one line when it ends.

The IMAP poller renews its lease every few seconds; during an outage each
renewal fails. The log says so once (warning), stays quiet while it lasts
(debug), and says once, with how long it lasted, when the database answers
again (info). The outage is real: another connection holds SQLite's write lock.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.store.db import create_store_engine
from gateway.store.leases import LeaseKeeper, Leases
from gateway.store.tables import LeaseRow

LOGGER = "intake.leases"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    created = create_store_engine(f"sqlite:///{tmp_path / 'intake.db'}", lock_timeout=0.05)
    LeaseRow.metadata.create_all(created, tables=[LeaseRow.__table__])  # type: ignore[list-item]
    yield created
    created.dispose()


class Outage:
    """Another process's connection holding the write lock while started."""

    def __init__(self, engine: Engine) -> None:
        self.locker = sqlite3.connect(engine.url.database or "", isolation_level=None)

    def start(self) -> None:
        self.locker.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        self.locker.execute("ROLLBACK")


def lease_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_an_outage_is_one_warning_quiet_renewals_and_one_line_when_it_ends(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    keeper = LeaseKeeper(Leases(engine), "imap:contact@cashplus.ma/INBOX", ttl=10.0)
    outage = Outage(engine)
    assert keeper.try_acquire()

    outage.start()
    try:
        assert [keeper.try_acquire() for _ in range(4)] == [False] * 4
    finally:
        outage.end()
    assert keeper.try_acquire()

    lines = lease_lines(caplog)
    levels = [level for level, _message in lines]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.DEBUG, logging.INFO]
    assert "database unavailable" in lines[0][1]
    assert re.search(r"available again after \d+\.\d s", lines[-1][1]), lines[-1][1]


def test_a_second_outage_is_announced_again(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    keeper = LeaseKeeper(Leases(engine), "imap:contact@cashplus.ma/INBOX", ttl=10.0)
    outage = Outage(engine)
    for _ in range(2):
        outage.start()
        try:
            assert not keeper.try_acquire()
        finally:
            outage.end()
        assert keeper.try_acquire()

    levels = [level for level, _message in lease_lines(caplog)]
    assert levels == [logging.WARNING, logging.INFO, logging.WARNING, logging.INFO]


def test_a_lease_held_by_another_process_is_not_an_outage(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    Leases(engine).acquire("imap:contact@cashplus.ma/INBOX", "another-host:1:abc", ttl=60.0)
    keeper = LeaseKeeper(Leases(engine), "imap:contact@cashplus.ma/INBOX", ttl=10.0)

    assert not keeper.try_acquire()
    assert lease_lines(caplog) == []
