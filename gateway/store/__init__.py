"""The gateway's durable state: blobs on disk, rows in SQLite or PostgreSQL.

``open_store(settings)`` gives every process the same view: the complaint
store (intake and quarantine), the outbox, the acknowledgements, the API
keys and shared counters.
``inspect_schema(settings)`` says where the database's schema stands, for
``intake check-config``, and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from config.settings import ConfigError, Settings
from gateway.store.acks import AckStore
from gateway.store.apikeys import ApiKeys
from gateway.store.blobs import BlobStore
from gateway.store.call_backs import CallBacks
from gateway.store.calls import CallStore
from gateway.store.captures import CaptureStore
from gateway.store.cases import CaseStore
from gateway.store.checkpoints import ImapCheckpoints
from gateway.store.customers import Customers, resolve_secret
from gateway.store.db import (
    MIGRATIONS,
    check_database_url,
    create_store_engine,
    migrate,
    normalize_url,
    read_connection,
)
from gateway.store.deliveries import Deliveries
from gateway.store.evidence import EvidenceLog
from gateway.store.figures import Figures
from gateway.store.intake import ComplaintStore, IdempotencyConflict, StoreUnavailable
from gateway.store.leases import Leases
from gateway.store.letters import LetterQueue
from gateway.store.media import MediaStore
from gateway.store.outbox import Counters, Outbox
from gateway.store.personal_data import PersonalData
from gateway.store.quarantine import Quarantine
from gateway.store.ratelimits import RateLimiter
from gateway.store.register import Register
from gateway.store.retention import Policy, Retention
from gateway.store.revisions import ComplaintRevisions
from gateway.store.staff import StaffAccounts
from gateway.store.staff_audit import StaffAudit
from gateway.store.staff_logins import LoginGuard, LoginPolicy
from gateway.store.triage import TriageStore
from normalizer.deadlines import Deadlines, compute_deadlines
from normalizer.errors import OurFailure, one_line

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = [
    "IdempotencyConflict",
    "MigrationFailed",
    "SchemaState",
    "Store",
    "StoreUnavailable",
    "checked_settings",
    "inspect_schema",
    "migrate_database",
    "open_store",
    "safe_database_url",
]


def checked_settings(settings: Settings) -> Settings:
    """``settings``, once the store knows it could open their database URL.

    Checked when a process starts rather than at its first write; the error
    names the variable, like every other configuration error.
    """
    if settings.database_url:
        try:
            check_database_url(settings.database_url)
        except ValueError as exc:
            raise ConfigError(f"INTAKE_DATABASE_URL: {exc}") from None
    return settings


def safe_database_url(settings: Settings) -> str:
    """The database URL without its password, for messages."""
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


@dataclass(eq=False)
class Store:
    engine: Engine
    blobs: BlobStore
    complaints: ComplaintStore
    outbox: Outbox
    api_keys: ApiKeys
    counters: Counters
    quarantine: Quarantine
    # The numbers behind /ops/ and /metrics (read-only queries).
    figures: Figures
    # Leader leases of the single-instance jobs (IMAP poller).
    leases: Leases
    # Twilio media waiting for their download, and downloaded.
    media: MediaStore
    # Where the IMAP poller stands in each mailbox.
    imap_checkpoints: ImapCheckpoints
    # The acknowledgements table (``gateway.acks``), its days in the settings' time zone.
    acks: AckStore
    # The OCR work queue of postal letters (``channels.letters``), releasing their complaints.
    letters: LetterQueue
    # The append-only evidence log: ``verify`` and the daily root (``gateway.store.evidence``).
    evidence: EvidenceLog
    # Status reports from case handling, the complaints' states, notices (``gateway.store.cases``).
    cases: CaseStore
    # Customers across channels: their keys, complaints, the backfill (``gateway.store.customers``).
    customers: Customers
    # Inputs captured at the edges, for the normalizer runners (``gateway.store.captures``).
    captures: CaptureStore

    @property
    def triage(self) -> TriageStore:
        """Inputs found not to be complaints, and staff's decisions (``gateway.store.triage``)."""
        return TriageStore(
            self.engine, self.blobs, self.complaints.event_source, self.customers.secret
        )

    @property
    def call_backs(self) -> CallBacks:
        """Calls to return, and who called back (``gateway.store.call_backs``)."""
        return CallBacks(self.engine)

    def register(self, zone: str) -> Register:
        """The monthly complaints register, its months in ``zone`` (``gateway.store.register``)."""
        return Register(self.engine, zone)

    def retention(self, policy: Policy) -> Retention:
        """The retention purge under ``policy`` (``gateway.store.retention``)."""
        return Retention(self.engine, self.blobs, policy)

    @property
    def deliveries(self) -> Deliveries:
        """What Twilio and bounces report of the acknowledgements (``gateway.store.deliveries``)."""
        return Deliveries(self.engine, self.blobs, self.complaints.event_source)

    @property
    def personal_data(self) -> PersonalData:
        """A customer's access and erasure requests (``gateway.store.personal_data``)."""
        return PersonalData(self.engine, self.blobs, self.customers.secret)

    def rate_limiter(self, per_hour: int) -> RateLimiter:
        """An hourly limit per client key, shared by every process on this store."""
        return RateLimiter(self.engine, per_hour)

    def staff_accounts(
        self, secret: bytes, max_age: int, idle_timeout: int | None = None
    ) -> StaffAccounts:
        """Staff users and their sessions, signed with ``secret``."""
        return StaffAccounts(self.engine, secret, max_age, idle_timeout)

    def login_guard(self, secret: bytes, policy: LoginPolicy) -> LoginGuard:
        """Staff login throttling, one-use login form tokens, trusted browsers."""
        return LoginGuard(self.engine, secret, policy)

    @property
    def staff_audit(self) -> StaffAudit:
        """The staff audit trail (who did what)."""
        return StaffAudit(self.engine)

    def calls(self, *, first_seen_at: datetime | None = None) -> CallStore:
        """Twilio calls; a call seen for the first time started at ``first_seen_at`` (None: now)."""
        return CallStore(self.engine, first_seen_at=first_seen_at)

    def revisions(self, event_source: str) -> ComplaintRevisions:
        """Changes to recorded complaints (media, transcript), as events of ``event_source``."""
        return ComplaintRevisions(self.engine, event_source)

    def ping(self) -> None:
        """One round trip to the database; ``StoreUnavailable`` (named after its error) if none."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    def close(self) -> None:
        self.engine.dispose()


def open_store(
    settings: Settings, *, migrate_schema: bool | None = None, read_only: bool = False
) -> Store:
    """The store of ``settings``; migrated first when ``migrate_schema`` (default: the
    ``INTAKE_AUTO_MIGRATE`` setting).

    ``read_only``: for commands that must change nothing (``intake retention purge
    --dry-run``): no migration, no file made (not even the customer key secret's, unread
    by a store that writes no complaint), and the database refuses every write.
    """
    engine = create_store_engine(
        settings.resolved_database_url,
        lock_timeout=settings.store_lock_timeout,
        read_only=read_only,
    )
    if not read_only and (settings.auto_migrate if migrate_schema is None else migrate_schema):
        migrate(engine)
    blobs = BlobStore(settings.blob_dir)
    customer_secret = resolve_secret(
        settings.customer_key_secret.get_secret_value(), settings.data_dir, create=not read_only
    )
    complaints = ComplaintStore(
        engine,
        blobs,
        settings.event_source,
        refused_head_bytes=settings.quarantine_head_bytes,
        refused_quota_bytes=settings.quarantine_refused_quota_bytes,
        customer_secret=customer_secret,
    )
    return Store(
        engine=engine,
        blobs=blobs,
        complaints=complaints,
        outbox=Outbox(engine),
        api_keys=ApiKeys(engine),
        counters=Counters(engine),
        quarantine=Quarantine(engine),
        figures=Figures(engine),
        leases=Leases(engine),
        media=MediaStore(engine),
        imap_checkpoints=ImapCheckpoints(engine),
        acks=AckStore(engine, settings.timezone),
        letters=LetterQueue(engine, settings.event_source),
        evidence=EvidenceLog(engine, blobs, complaints, settings.timezone),
        cases=CaseStore(engine),
        customers=Customers(engine, customer_secret),
        captures=CaptureStore(engine, blobs, partial(_deadlines, settings)),
    )


def _deadlines(settings: Settings, received_at: datetime) -> Deadlines:
    """Both deadlines of an input received at ``received_at``, as the pipeline stamps them."""
    return compute_deadlines(
        received_at,
        zone=settings.timezone,
        ack_days=settings.ack_days,
        answer_days=settings.answer_days,
    )


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands against the migrations of this version."""

    # Alembic revisions the database is stamped at; empty: never migrated.
    revisions: frozenset[str]
    # The newest revisions this version's migrations reach.
    heads: frozenset[str]
    # Stamped revisions this version has no migration for (a newer one ran).
    unknown: frozenset[str]
    has_tables: bool

    @property
    def up_to_date(self) -> bool:
        return bool(self.revisions) and self.revisions == self.heads

    def describe(self) -> str:
        """One line for an operator, naming the command that fixes it."""
        at, newest = _names(self.revisions), _names(self.heads)
        if self.up_to_date:
            return f"schema up to date (revision {at})"
        if self.unknown:
            return f"schema at revision {at}, newer than this version ({newest}): upgrade intake"
        if self.revisions:
            return f"schema at revision {at}, behind {newest}: run `intake migrate`"
        if self.has_tables:
            return "tables but no schema revision: not an intake database?"
        return "empty, no schema yet: run `intake migrate`"


def inspect_schema(settings: Settings) -> SchemaState:
    """The schema's state, read without creating or changing anything.

    A SQLite file that does not exist is an empty database, and stays absent:
    connecting would create it. Raises ``StoreUnavailable`` when the database
    cannot be reached.
    """
    try:
        return _inspect_schema(settings)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(one_line(exc)) from exc


def _inspect_schema(settings: Settings) -> SchemaState:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    heads = frozenset(script.get_heads())
    url = settings.resolved_database_url
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and not _sqlite_file_exists(parsed.database):
        return SchemaState(frozenset(), heads, frozenset(), has_tables=False)
    engine = create_store_engine(url, lock_timeout=settings.store_lock_timeout)
    try:
        with read_connection(engine) as connection:
            revisions, has_tables = _stamped(connection)
    finally:
        engine.dispose()
    unknown = frozenset(revision for revision in revisions if not _known(script, revision))
    return SchemaState(revisions, heads, unknown, has_tables)


def _stamped(connection: Connection) -> tuple[frozenset[str], bool]:
    """The revisions the database is stamped at, and whether it has any table."""
    from alembic.runtime.migration import MigrationContext

    revisions = MigrationContext.configure(connection).get_current_heads()
    return frozenset(revisions), bool(inspect(connection).get_table_names())


def _known(script: ScriptDirectory, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _sqlite_file_exists(database: str | None) -> bool:
    """In-memory databases always "exist": there is no file to spare."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return True
    return Path(database).exists()


def _names(revisions: frozenset[str]) -> str:
    return ", ".join(sorted(revisions)) or "none"


class MigrationFailed(OurFailure):
    """``migrate_database`` failed; ``unreachable``: the database could not be reached.

    Any other failure (a migration that breaks a constraint or a statement
    the database refuses, a file that is not a database) fails the same way
    every time, so a supervisor must not keep retrying it.
    """

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.retryable = unreachable


def migrate_database(settings: Settings) -> None:
    """Bring the database's schema to the newest revision; ``MigrationFailed`` if it cannot."""
    try:
        engine = create_store_engine(settings.resolved_database_url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        raise MigrationFailed(one_line(exc), unreachable=_unreachable(exc)) from exc


def _unreachable(exc: Exception) -> bool:
    if isinstance(exc, (InterfaceError, OSError)):
        return True
    # SQLite reports a broken migration ("no such table", "duplicate column")
    # as an OperationalError too: only the errors of reaching the database count.
    return isinstance(exc, OperationalError) and bool(_UNREACHABLE.search(str(exc.orig or exc)))


_UNREACHABLE = re.compile(
    r"could not connect|connection|timeout|timed out|unable to open database|"
    r"database is locked|server closed|no route|refused|name or service",
    re.IGNORECASE,
)
