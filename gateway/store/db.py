"""Database engine and schema migrations.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so a
committed complaint survives a power cut, and every transaction starts with
``BEGIN IMMEDIATE`` so two processes (web and relay) never deadlock on a
read-to-write lock upgrade. PostgreSQL is used as configured.

Waiting for SQLite's write lock is bounded (``INTAKE_STORE_LOCK_TIMEOUT``):
a writer that cannot have it in time fails with a database error, which the
intake paths answer as our failure (HTTP 503, SMTP 451, IMAP mail left in the
inbox) instead of holding the sender while another process (a stuck
migration, a backup tool) keeps the database locked. The bound covers both
waits of a write: for the other writers of this process (``_writer_lock``)
and in SQLite's busy handler, which gets only what is left of it.

Every writer of a running process shares that bound, background jobs (relay,
lease renewal, workers) included: while one of them waited in SQLite's busy
handler it would hold this process's writer lock, and the requests queued
behind it would wait as long; a background job that gives up simply tries
again on its next pass. Only migrations wait longer
(``MIGRATION_LOCK_TIMEOUT``): they run at start, before anything is served,
and a process starting beside another that is migrating should wait for it
rather than fail to start.
"""

from __future__ import annotations

import ast
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger("intake.store")

MIGRATIONS = Path(__file__).parent / "migrations"
# Seconds a write waits for the write lock (Settings.store_lock_timeout).
DEFAULT_LOCK_TIMEOUT = 5.0
# Seconds a migration waits for it: see the module docstring.
MIGRATION_LOCK_TIMEOUT = 30.0


class WriteLockTimeout(SQLAlchemyError):
    """The write lock was not ours within the wait: another writer of this process kept it.

    A database error like SQLite's own "database is locked", so every handler of
    database failures (``guarded``, the lease keeper, the relay) treats both alike.
    """


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def check_database_url(url: str) -> None:
    """Refuse a database URL the store could not open, at start-up rather than at first use.

    Read the way the store reads it (plain ``postgresql://`` means psycopg 3),
    so what passes here is what ``open_store`` can open. Messages name the
    scheme, never the URL: it may hold a password.
    """
    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        raise ValueError(
            "not a database URL (dialect+driver://user:password@host:port/database)"
        ) from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"unknown database dialect {parsed.drivername!r}") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ValueError(f"the driver of {parsed.drivername!r} is not installed ({exc})") from None


def create_store_engine(
    url: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, read_only: bool = False
) -> Engine:
    """The engine of the store; on SQLite a write waits ``lock_timeout`` seconds for the lock.

    ``read_only``: the database itself refuses every write of this engine (SQLite's
    ``query_only``, PostgreSQL's ``default_transaction_read_only``), and no folder is made.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not read_only:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": lock_timeout, "check_same_thread": False},
            execution_options={_LOCK_WAIT_OPTION: lock_timeout},
        )
        _configure_sqlite(engine, lock_timeout, read_only=read_only)
        return engine
    connect_args = {"options": "-c default_transaction_read_only=on"} if read_only else {}
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args
    )


def lock_timeout(engine: Engine) -> float:
    """Seconds a write on ``engine`` waits for the write lock (SQLite; elsewhere unused)."""
    return float(engine.get_execution_options().get(_LOCK_WAIT_OPTION, DEFAULT_LOCK_TIMEOUT))


def _configure_sqlite(engine: Engine, lock_timeout: float, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=ON")  # before anything could write
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        busy_ms = _busy_ms(lock_timeout)
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        record.info[_BUSY_MS_KEY] = busy_ms
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers take no lock (WAL lets them run beside the writer); writers
        # take the write lock up front, waiting at most what their wait allows.
        options = connection.get_execution_options()
        if options.get(_READ_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        _set_busy_timeout(connection, _busy_ms(options.get(_LOCK_WAIT_OPTION, lock_timeout)))
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _busy_ms(seconds: float) -> int:
    """SQLite's busy timeout for a wait of ``seconds``, rounded up to a tenth of a second.

    Rounded so that the usual write, whose wait is the whole timeout less a few
    microseconds, finds the connection already set and costs no extra statement.
    """
    return max(0, math.ceil(round(seconds * 10, 6)) * 100)


def _set_busy_timeout(connection: Connection, busy_ms: int) -> None:
    # The value stays on the pooled connection: set it only when it changes.
    if connection.info.get(_BUSY_MS_KEY) != busy_ms:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")
        connection.info[_BUSY_MS_KEY] = busy_ms


_READ_OPTION = "intake_read"
# Seconds a write transaction may still wait for SQLite's write lock.
_LOCK_WAIT_OPTION = "intake_lock_wait"
_BUSY_MS_KEY = "intake_busy_ms"
_readers: dict[Engine, Engine] = {}
_writer_locks: dict[Engine, threading.Lock] = {}
_registry_lock = threading.Lock()


@contextmanager
def _write_lock(engine: Engine, lock_wait: float | None) -> Iterator[dict[str, float]]:
    """Take this process's writer lock within ``lock_wait`` seconds (default: the engine's).

    On SQLite, writers of one process queue on a lock here rather than in
    SQLite's busy handler, whose growing sleeps would add latency spikes.
    Yields the execution options of the transaction: what is left of the wait,
    for SQLite's busy handler. A wait of 0 still tries once, without waiting.
    """
    if engine.dialect.name != "sqlite":
        yield {}
        return
    wait = max(0.0, lock_timeout(engine) if lock_wait is None else lock_wait)
    deadline = time.monotonic() + wait
    lock = _writer_locks.get(engine)
    if lock is None:
        with _registry_lock:
            lock = _writer_locks.setdefault(engine, threading.Lock())
    if not lock.acquire(timeout=wait):
        raise WriteLockTimeout(f"no write lock within {wait:.1f} s")
    try:
        yield {_LOCK_WAIT_OPTION: max(0.0, deadline - time.monotonic())}
    finally:
        lock.release()


def _reader(engine: Engine) -> Engine:
    reader = _readers.get(engine)
    if reader is None:
        with _registry_lock:
            reader = _readers.setdefault(engine, engine.execution_options(**{_READ_OPTION: True}))
    return reader


@contextmanager
def writing(engine: Engine, *, lock_wait: float | None = None) -> Iterator[Session]:
    """A session in a write transaction, committed on exit.

    ``lock_wait``: seconds to wait for the write lock (default: the engine's
    lock timeout); past it, a database error (``WriteLockTimeout`` or SQLite's
    "database is locked").
    """
    with _write_lock(engine, lock_wait) as options, Session(engine) as session, session.begin():
        if options:
            session.connection(execution_options=options)  # before the BEGIN that needs them
        yield session


@contextmanager
def committing(engine: Engine, *, lock_wait: float | None = None) -> Iterator[Connection]:
    """A Core connection in a write transaction, committed on exit (rolled back on error).

    For the hot path (the group commit): no ORM unit of work, same lock and
    same ``lock_wait`` as ``writing``.
    """
    with _write_lock(engine, lock_wait) as options, engine.connect() as connection:
        if options:
            connection.execution_options(**options)
        with connection.begin():
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


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine.execution_options(
        **{_LOCK_WAIT_OPTION: MIGRATION_LOCK_TIMEOUT}
    )
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
                connection.commit()
                if not create_new_schema(engine, connection):
                    config.attributes["connection"] = connection
                    command.upgrade(config, "heads")
                    connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(7201020915)"))
                connection.commit()
        return
    with config.attributes["engine"].connect() as connection:
        created = create_new_schema(engine, connection)
    if not created:
        command.upgrade(config, "heads")


def create_new_schema(engine: Engine, connection: Connection) -> bool:
    """Build a database that has no table yet in one step; False if it has tables.

    The models declare exactly what the migrations build (a test compares
    the two schemas, table by table), so a new database gets the whole
    schema at once and is stamped at the newest revision, instead of
    replaying every migration: a fresh ``intake`` command or test starts
    about half a second sooner. One transaction, checked inside it: of two
    processes starting together, the second finds the tables and migrates
    (nothing left to do).
    """
    from alembic import command
    from sqlalchemy import inspect

    with connection.begin():
        if inspect(connection).get_table_names():
            return False
        schema_metadata().create_all(connection)
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.stamp(config, "heads")
    return True


def schema_metadata() -> Any:
    """Every table of the store, as ``gateway.store.tables`` declares them (what env.py reads)."""
    from gateway.store.tables import Base

    return Base.metadata


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
