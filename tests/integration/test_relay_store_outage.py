"""The relay when its own database fails: the log names the store, not the broker."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from config.settings import Settings
from gateway.lib.services import build_services
from router.relay import build_relay
from tests.peers.complaints import record


def test_a_locked_outbox_is_reported_as_the_store_and_its_end_too(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    services = build_services(settings.model_copy(update={"store_lock_timeout": 0.2}))
    relay = build_relay(services.settings, services.store)
    try:
        record(services.store)
        # Another process holds the write lock, as a stuck migration would.
        locker = sqlite3.connect(settings.data_dir / "intake.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        with caplog.at_level(logging.WARNING, logger="intake.relay"):
            try:
                relay.step()
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            relay.step()
    finally:
        relay.close()
        services.close()

    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("store unavailable (OperationalError") for line in lines), lines
    assert not any(line.startswith("broker") for line in lines), lines
    assert any(line.startswith("store reachable again") for line in lines), lines
