"""The phone line's tables: migration 0006 builds exactly what the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from channels.twilio.worker import MAX_BACKOFF_SECONDS, retry_delay
from config.settings import load_settings
from gateway.store import open_store
from gateway.store.tables import Base


def test_migration_0006_matches_the_models_of_the_phone_tables(tmp_path: Path) -> None:
    store = open_store(load_settings(data_dir=tmp_path))
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        store.close()
    assert [item for item in differences if "twilio" in str(item)] == []


def test_download_retries_back_off_exponentially_up_to_a_cap() -> None:
    delays = [retry_delay(2.0, attempt) for attempt in range(1, 12)]

    assert delays[:4] == [2.0, 4.0, 8.0, 16.0]
    assert max(delays) == MAX_BACKOFF_SECONDS
    assert delays == sorted(delays)
