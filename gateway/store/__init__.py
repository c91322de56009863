"""The gateway's durable state: blobs on disk, rows in SQLite or PostgreSQL.

``open_store(settings)`` gives every process the same view: the complaint
store (intake and quarantine), the outbox, the API keys and shared counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from config.settings import Settings
from gateway.store.apikeys import ApiKeys
from gateway.store.blobs import BlobStore
from gateway.store.db import create_store_engine, migrate
from gateway.store.intake import ComplaintStore, IdempotencyConflict, StoreUnavailable
from gateway.store.outbox import Counters, Outbox

__all__ = ["IdempotencyConflict", "Store", "StoreUnavailable", "open_store"]


@dataclass
class Store:
    engine: Engine
    blobs: BlobStore
    complaints: ComplaintStore
    outbox: Outbox
    api_keys: ApiKeys
    counters: Counters

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings, *, migrate_schema: bool | None = None) -> Store:
    engine = create_store_engine(
        settings.resolved_database_url, lock_timeout=settings.store_lock_timeout
    )
    if settings.auto_migrate if migrate_schema is None else migrate_schema:
        migrate(engine)
    blobs = BlobStore(settings.blob_dir)
    return Store(
        engine=engine,
        blobs=blobs,
        complaints=ComplaintStore(engine, blobs, settings.event_source),
        outbox=Outbox(engine),
        api_keys=ApiKeys(engine),
        counters=Counters(engine),
    )
