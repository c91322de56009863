"""Tables of the store: evidence, complaints, the outbox, quarantine, API keys.

The schema is created and changed only by the Alembic migrations in
``gateway/store/migrations``; a test checks that the migrations and these
models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        moment = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class EvidenceRow(Base):
    """Raw input exactly as received, with the identifiers its channel gave it."""

    __tablename__ = "evidence"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    stored_at: Mapped[str] = mapped_column(String(255))
    source_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The e-mail Message-ID, so a reply (In-Reply-To) finds the complaint.
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    received_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=_now)


class ComplaintRow(Base):
    __tablename__ = "complaints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    # One per source event (Message-ID + UID, CallSid, Idempotency-Key, ...):
    # a repeated input finds its complaint here instead of making a second one.
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    # Hash of what the caller sent under that key, to tell a retry from a
    # different complaint reusing the key.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16), index=True)
    origin: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    ack_due_at: Mapped[datetime]
    answer_due_at: Mapped[datetime]
    follow_up_of: Mapped[str | None] = mapped_column(String(16))
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class OutboxRow(Base):
    """A message waiting for (or past) publication; rows are kept for replay."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay only ever scans unpublished rows in order.
        Index(
            "ix_outbox_pending",
            "id",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    complaint_id: Mapped[str | None] = mapped_column(ForeignKey("complaints.id"))
    routing_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    published_at: Mapped[datetime | None]
    # Not published before this time: a voice complaint waits for its
    # transcript (or for the wait to run out). Null: at once.
    available_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Held rows are not retried (e.g. larger than the broker accepts) until an
    # operator replays them.
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which relay is publishing the row, and until when (migration 0008): several
    # relays claim disjoint rows; a claim whose relay died lapses at claimed_until.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]


class QuarantineRow(Base):
    """Input we could not turn into a complaint, kept with the reason."""

    __tablename__ = "quarantine"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))
    stored_at: Mapped[str] = mapped_column(String(255))
    source_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    resolved_at: Mapped[datetime | None]
    complaint_id: Mapped[str | None] = mapped_column(String(36))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # sha256 of the key: keys are 256-bit random, so a slow hash adds nothing.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    revoked_at: Mapped[datetime | None]
    # False: the key reads back only the complaints it submitted itself. True:
    # any complaint (the call centre's CRM looking up a caller's reference).
    reads_all: Mapped[bool] = mapped_column(default=False, server_default=false())


class EventRow(Base):
    """An intake event that is not a complaint (auto-reply, missed call), kept with its evidence."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    evidence_id: Mapped[str] = mapped_column(ForeignKey("evidence.id"))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class CounterRow(Base):
    """Monotonic counters shared by all processes (publish errors, ...) for /metrics."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
