"""Database engine and schema migrations.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so a
committed complaint survives a power cut, and every transaction starts with
``BEGIN IMMEDIATE`` so two processes (web and relay) never deadlock on a
read-to-write lock upgrade. PostgreSQL is used as configured.
"""

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
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


def _writer_lock(engine: Engine) -> AbstractContextManager[Any]:
    """On SQLite, writers of one process queue on a lock here rather than in
    SQLite's busy handler, whose growing sleeps would add latency spikes."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    lock = _writer_locks.get(engine)
    if lock is None:
        with _registry_lock:
            lock = _writer_locks.setdefault(engine, threading.Lock())
    return lock


def _reader(engine: Engine) -> Engine:
    reader = _readers.get(engine)
    if reader is None:
        with _registry_lock:
            reader = _readers.setdefault(engine, engine.execution_options(**{_READ_OPTION: True}))
    return reader


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    """A session in a write transaction, committed on exit."""
    with _writer_lock(engine), Session(engine) as session, session.begin():
        yield session


@contextmanager
def committing(engine: Engine) -> Iterator[Connection]:
    """A Core connection in a write transaction, committed on exit (rolled back on error).

    For the hot path (the group commit): no ORM unit of work, same lock as ``writing``.
    """
    with _writer_lock(engine), engine.begin() as connection:
        yield connection


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session for reads only (no write lock on SQLite)."""
    with Session(_reader(engine)) as session:
        yield session


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A Core connection for reads only (no write lock on SQLite)."""
    with _reader(engine).connect() as connection:
        yield connection


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
    if at_newest_schema(engine):
        # Nothing to do: spare every process start alembic and the models it imports.
        return
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


def at_newest_schema(engine: Engine) -> bool:
    """Whether the database already stands at every head of the migration scripts."""
    try:
        with read_connection(engine) as connection:
            stamped = {row[0] for row in connection.execute(text(_VERSIONS_QUERY))}
    except SQLAlchemyError:
        return False  # no alembic_version table yet: a new database
    return bool(stamped) and stamped == script_heads()


_VERSIONS_QUERY = "SELECT version_num FROM alembic_version"


@lru_cache(maxsize=1)
def script_heads() -> frozenset[str]:
    """The head revisions of ``migrations/versions``, read from the files, not imported.

    Empty when a file does not say its revisions as plain literals: then
    ``migrate`` asks alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = _literal_assignments(path, ("revision", "down_revision"))
        if found is None:
            return frozenset()
        if "revision" not in found:
            continue  # not a revision (the package's __init__)
        revisions.add(str(found["revision"]))
        down = found.get("down_revision")
        parents.update(down if isinstance(down, tuple | list) else [] if down is None else [down])
    return frozenset(revisions - parents)


def _literal_assignments(path: Path, names: tuple[str, ...]) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in names:
                values[target.id] = ast.literal_eval(value)
    except (SyntaxError, ValueError, OSError):
        return None
    return values
