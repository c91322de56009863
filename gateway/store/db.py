"""Database engine and schema migrations.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so a
committed complaint survives a power cut, and every transaction starts with
``BEGIN IMMEDIATE`` so two processes (web and relay) never deadlock on a
read-to-write lock upgrade. PostgreSQL is used as configured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("intake.store")

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_store_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers take no lock (WAL lets them run beside the writer); writers
        # take the write lock up front.
        reader = connection.get_execution_options().get(_READ_OPTION)
        connection.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")


_READ_OPTION = "intake_read"
_readers: dict[Engine, Engine] = {}
_writer_locks: dict[Engine, threading.Lock] = {}
_registry_lock = threading.Lock()


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    """A session in a write transaction, committed on exit.

    On SQLite, writers of one process queue on a lock here rather than in
    SQLite's busy handler, whose growing sleeps would add latency spikes.
    """
    lock: AbstractContextManager[Any] = nullcontext()
    if engine.dialect.name == "sqlite":
        with _registry_lock:
            lock = _writer_locks.setdefault(engine, threading.Lock())
    with lock, Session(engine) as session, session.begin():
        yield session


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session for reads only (no write lock on SQLite)."""
    with _registry_lock:
        reader = _readers.get(engine)
        if reader is None:
            reader = _readers[engine] = engine.execution_options(**{_READ_OPTION: True})
    with Session(reader) as session:
        yield session


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to run from several processes).

    "heads": features developed side by side add migrations on branches of
    their own; a merge revision joins them when convenient.
    """
    from alembic import command

    config = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        # One migrator at a time across all instances.
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(7201020915)"))
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "heads")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(7201020915)"))
                connection.commit()
        return
    command.upgrade(config, "heads")
