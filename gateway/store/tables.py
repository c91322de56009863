"""Every table of the store: evidence, complaints, the outbox, quarantine, API keys,
IMAP checkpoints, leases, calls and media, letters, web form attempts,
acknowledgements, staff users and sessions, login throttling and the staff audit
trail.

Letters: one row per postal letter and the OCR work queue (``pending`` ->
``running`` -> ``done`` or ``failed``). Staff: passwords only as scrypt
hashes, sessions only as a keyed hash of the cookie's token, so a copy of
the database opens no session. Web form attempts: one row per attempt and
hashed client address, so every web instance agrees on the hourly limit.
Acknowledgements: one row per complaint (unique), which makes a
redelivered complaint harmless.

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
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
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


class EvidenceLogRow(Base):
    """One entry of the append-only evidence log (``gateway.store.evidence``).

    ``entry_hash`` is the sha256 of the canonical encoding of (sequence,
    sha256, received_at, channel, source_ids, previous_hash): each entry
    seals the one before it, so a row removed, reordered or changed breaks
    the chain (``intake evidence verify``).
    """

    __tablename__ = "evidence_log"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    evidence_id: Mapped[str | None] = mapped_column(String(36), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_at: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(16))
    source_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime]
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    appended_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    # ``captured`` (an input stored) or ``removed`` (a blob and personal content
    # removed under the retention policy or an erasure, migration 0015): a removal
    # names the blob's sha256, the captured entry it removes (``removes``, NULL for
    # an attachment or a quarantined head) and why (``reason``), all sealed in its hash.
    kind: Mapped[str] = mapped_column(
        String(16), default="captured", server_default=text("'captured'")
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    removes: Mapped[int | None] = mapped_column(BigInteger)


class EvidenceChainHeadRow(Base):
    """The last entry of the evidence log, one row: locked by every append (the serializer)."""

    __tablename__ = "evidence_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


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
    # Refused input kept as its head only (migration 0013): the bytes kept in
    # ``stored_at`` (0: metadata only, past the quota); ``sha256`` and ``size``
    # are the whole input's. NULL: ``stored_at`` holds the whole input.
    kept_bytes: Mapped[int | None] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # sha256 of the key: keys are 256-bit random, so a slow hash adds nothing.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    revoked_at: Mapped[datetime | None]
    # What the key may do: scope names separated by spaces, sorted
    # (``gateway.store.apikeys.SCOPES``). Empty: nothing.
    scopes: Mapped[str] = mapped_column(String(512), default="", server_default="")


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


# -- staff accounts ----------------------------------------


class StaffUserRow(Base):
    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    disabled_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # mailroom (letters pages), operator (/ops/), admin (everything); users made
    # before roles existed became admin (migration 0012).
    role: Mapped[str] = mapped_column(
        String(16), default="mailroom", server_default=text("'mailroom'")
    )
    password_changed_at: Mapped[datetime | None]


class StaffSessionRow(Base):
    __tablename__ = "staff_sessions"

    # HMAC of the cookie's token under the session secret.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Last request seen (written at most once a minute), for the idle timeout.
    last_seen_at: Mapped[datetime | None]


class StaffLoginThrottleRow(Base):
    """Failed logins of one account name or one client address, and its back-off.

    ``key`` is a hash (``account:NAME`` or ``address:IP``): names an attacker
    tried and client addresses are not kept in clear.
    """

    __tablename__ = "staff_login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]


class StaffLoginTokenRow(Base):
    """A login form token already used: each served form allows one attempt."""

    __tablename__ = "staff_login_tokens"

    # sha256 of the token's nonce.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StaffAuditRow(Base):
    """One staff action: log in/out, replays, letters uploaded or posted, accounts changed."""

    __tablename__ = "staff_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=_now, index=True)
    # The staff user's name, or ``cli:<os user>`` for a shell command.
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    # What it acted on: a quarantine item, a message id, a letter, a user name.
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    # Values a notice on the page is worded from (reference, count...).
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The client address, masked (last part dropped).
    address: Mapped[str | None] = mapped_column(String(64))


# -- letters -------------------------------------

# A letter's OCR state.
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


class LetterRow(Base):
    __tablename__ = "letters"
    __table_args__ = (Index("ix_letters_queue", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    # Where it came from: page, api or hotfolder.
    source: Mapped[str] = mapped_column(String(16))
    # [{name, sha256, size, mime, kind, pages}] in page order.
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_by: Mapped[str | None] = mapped_column(ForeignKey(StaffUserRow.id))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # DocumentResult.to_json() plus review flags.
    result: Mapped[dict[str, Any] | None]
    language: Mapped[str | None] = mapped_column(String(16))
    thumbnail: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=_now)


# -- calls and media -----------------------------------------


class CallRow(Base):
    __tablename__ = "twilio_calls"
    __table_args__ = (Index("ix_twilio_calls_state_ended", "state", "ended_at"),)

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_sid: Mapped[str | None] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(32))  # E.164, when valid
    called: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(16))
    language_method: Mapped[str | None] = mapped_column(String(16))
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    recording_url: Mapped[str | None] = mapped_column(String(1024))
    transcript: Mapped[str | None] = mapped_column(Text)
    transcript_sha256: Mapped[str | None] = mapped_column(String(64))
    transcript_language: Mapped[str | None] = mapped_column(String(16))
    transcript_confidence: Mapped[float | None] = mapped_column(Float)
    transcript_source: Mapped[str | None] = mapped_column(String(100))
    # Blob location of the request that brought the transcript (evidence).
    transcript_evidence: Mapped[str | None] = mapped_column(String(255))
    final_status: Mapped[str | None] = mapped_column(String(16))
    # The call-status webhook's body, kept for the missed-call event's evidence.
    end_request: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=_now)


class MediaRow(Base):
    """A recording or a photo to download, then attach to its complaint."""

    __tablename__ = "twilio_media"
    __table_args__ = (Index("ix_twilio_media_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # recording:<RecordingSid> or message:<MessageSid>:<index>; one row per media.
    media_key: Mapped[str] = mapped_column(String(128), unique=True)
    # Dedup key of the complaint it belongs to (it may not exist yet).
    complaint_key: Mapped[str] = mapped_column(String(512), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(String(2048))
    name: Mapped[str | None] = mapped_column(String(255))
    declared_type: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # pending, stored, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The contract's Attachment, once stored.
    attachment: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)
    done_at: Mapped[datetime | None]


# -- IMAP checkpoints -----------------------------------


class ImapCheckpointRow(Base):
    """How far the poller got in one mailbox (host, user and folder)."""

    __tablename__ = "imap_checkpoints"

    mailbox: Mapped[str] = mapped_column(String(512), primary_key=True)
    # Both are unsigned 32-bit numbers in IMAP: too large for a signed INTEGER.
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=_now)


# -- web form attempts, acknowledgements -------------------------------


class WebformAttemptRow(Base):
    """One POST of the public form, for the per-address hourly limit."""

    __tablename__ = "webform_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Keyed hash of the client address: enough to count, useless to identify.
    client_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)


class AcknowledgementRow(Base):
    """The acknowledgement of one complaint: sent, queued (letters), failed or skipped."""

    __tablename__ = "acknowledgements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(16), index=True)
    # email, sms, whatsapp, letter; null when skipped before a method was chosen.
    method: Mapped[str | None] = mapped_column(String(16))
    # Normalized address (lower-case e-mail, E.164 phone) for the daily cap.
    recipient: Mapped[str | None] = mapped_column(String(320), index=True)
    languages: Mapped[str] = mapped_column(String(32), default="")
    # sending -> sent | failed; letters: queued -> sent (posted); or skipped.
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    # E-mail Message-ID, drawn once: a resend after a crash carries the same one.
    message_id: Mapped[str | None] = mapped_column(String(255))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    # The PDF of a letter acknowledgement, in the blob store.
    document: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    event_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=_now)
    sent_at: Mapped[datetime | None]
    # When the row took one of its recipient's places for the day (the daily
    # cap counts them); taken again when ``intake ack retry`` re-opens it
    # (migration 0009).
    claimed_at: Mapped[datetime | None]
    # A deferred row (it kept failing on our side; ``reason`` holds the last
    # failure's code) or one re-opened by ``intake ack retry`` is sent by a
    # worker's poll, not by a queue delivery: not before this time. A worker
    # taking it moves it on past its send, so it is also a lease: a worker
    # that died mid-send leaves it to another once it lapses.
    retry_at: Mapped[datetime | None]
    # Times ``intake ack retry`` re-opened it (each round publishes its own ``ack.failed``).
    reopened: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Sends found undelivered (a Twilio status callback, a bounce) and sent again by the
    # next method: each round publishes its own ``ack.sent`` (migration 0023).
    rounds: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class AckDeliveryRow(Base):
    """One acknowledgement handed to Twilio or the SMTP relay, and what its delivery became.

    ``status`` only moves forward (``queued`` < ``sending`` < ``sent`` <
    ``delivered`` < ``read``; ``undelivered`` and ``failed`` are final): a late
    or repeated report changes nothing. No personal data: the recipient is
    the acknowledgement's (migration 0023).
    """

    __tablename__ = "acknowledgement_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ack_id: Mapped[str] = mapped_column(String(36), index=True)
    complaint_id: Mapped[str] = mapped_column(String(36), index=True)
    # The acknowledgement's round (``AcknowledgementRow.rounds``) when it went out.
    round: Mapped[int] = mapped_column(Integer, default=0)
    method: Mapped[str] = mapped_column(String(16))
    # Twilio's MessageSid, or the e-mail's Message-ID.
    provider_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # Twilio's ErrorCode, or the bounce's status code (5.1.1).
    error: Mapped[str | None] = mapped_column(String(64))
    # Whether the acknowledgement went out again (the next method) after this one failed.
    resent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    # When the provider last reported on it (None: nothing reported since the hand-off).
    reported_at: Mapped[datetime | None]


# -- leases ----------------------------------------


class LeaseRow(Base):
    """Who holds a single-instance job, and until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]
    # Incremented at every change of holder: logs and operators can tell takeovers apart.
    epoch: Mapped[int] = mapped_column(Integer, default=1)


# -- case handling: status reports, notices (migration 0018) ---------------------


class ComplaintStateRow(Base):
    """Where the handling of one complaint stands, as case management last reported it.

    No row: nothing reported yet (``received``). ``answered_at`` and
    ``closed_at`` are the ``at`` of those reports; ``extended_until`` is the
    answer deadline the customer was told after an extension.
    """

    __tablename__ = "complaint_states"

    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    extended_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=_now)


class ComplaintStatusRow(Base):
    """One status report (API, queue or staff), kept as the complaint's history.

    ``dedup_key`` (complaint, status, ``at``) makes a repeated report, by
    either path, the same fact.
    """

    __tablename__ = "complaint_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), index=True)
    reference: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    # An extension: the new answer deadline and why (a code the notice words).
    answer_due_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(32))
    # api, queue or staff; and who: the API key's name, the event's source, the staff member.
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(255))
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(default=_now)


class NoticeRow(Base):
    """A notice to the customer besides the acknowledgement (a longer delay), and its sending.

    ``pending`` -> ``sent`` | ``queued`` (a letter for the mailroom) |
    ``failed`` | ``skipped``; a pending row is sent by the case worker at
    ``next_attempt_at``.
    """

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), index=True)
    reference: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    status_id: Mapped[int] = mapped_column(ForeignKey("complaint_status_history.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    method: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    message_id: Mapped[str | None] = mapped_column(String(255))
    document: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(36))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)


# -- one customer across channels (migration 0020) -------------------------------


class CustomerPointRow(Base):
    """A contact point's key (an HMAC of the phone or e-mail, never the value) and the
    customer key it was first given: later complaints by that point take the same key.
    """

    __tablename__ = "customer_points"

    contact_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(40), index=True)
    first_seen_at: Mapped[datetime]


class ComplaintContactRow(Base):
    """One contact point of one complaint (its key), and the customer key the complaint got."""

    __tablename__ = "complaint_contacts"
    __table_args__ = (
        Index("ix_complaint_contacts_contact_key_received_at", "contact_key", "received_at"),
    )

    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), primary_key=True)
    contact_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(40), index=True)
    received_at: Mapped[datetime]


# -- triage (migration 0019) -------------------------------------------------------

# A non-complaint's state on the staff page "to sort".
TO_SORT, CONFIRMED, MADE_COMPLAINT = "to_sort", "confirmed", "complaint"


class TriageRow(Base):
    """An input the triage found not to be a complaint, kept to be sorted by a person.

    Its event (``events``, ``triage.<kind>``) holds the evidence; this row holds
    the complaint it would be (``message``: reference, deadlines from the
    original receipt, text, attachments) and what a person decided.
    """

    __tablename__ = "triage"

    id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(index=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True, default=TO_SORT)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    complaint_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=_now)


# -- calls to return (migration 0023) ------------------------------------------------

# Why a call is to be returned: nobody took it (or the caller hung up in hours), the
# caller hung up out of hours without leaving a message, or the message is empty.
MISSED = "missed"
OUT_OF_HOURS_NO_MESSAGE = "out_of_hours_no_message"
EMPTY_MESSAGE = "empty_message"


class CallBackRow(Base):
    """A phone call staff should return: the caller's number and what came of calling back.

    One row per call (``call_sid``), written by the phone line's handlers;
    ``reference``: the call's complaint when it has one (an empty message).
    ``done_at`` / ``done_by`` / ``outcome``: who called back, when, with what note.
    """

    __tablename__ = "call_backs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str | None] = mapped_column(String(32))  # E.164; None once erased
    language: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(index=True)
    reference: Mapped[str | None] = mapped_column(String(16))
    done_at: Mapped[datetime | None] = mapped_column(index=True)
    done_by: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class IntakeRow(Base):
    """One input captured at an edge, before or after its normalization (migration 0025).

    The legal record starts here: the raw bytes (in ``data`` for a small
    input, else a blob, fsynced), when and
    how they came, the reference and deadlines the sender was given. The
    normalizer runners claim ``captured`` rows (``claimed_until`` in the
    future: someone has it), turn each into a complaint whose id is this
    row's ``id``, or an event, or a quarantine entry, and set ``state`` to
    ``done`` or ``quarantined`` with the ``outcome``. ``source_ids`` are
    emptied once the row is done: the evidence row holds them from then on.
    """

    __tablename__ = "intake"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    # What was sent under the dedup key (an API body's hash): a retry or a reuse.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    ack_due_at: Mapped[datetime]
    answer_due_at: Mapped[datetime]
    stored_at: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    # A small input's bytes, until a runner writes them to ``stored_at`` (migration 0026).
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(255))
    source_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    # complaint, repeat, event, triaged, bounce, quarantined
    outcome: Mapped[str | None] = mapped_column(String(16))
    # The complaint it became (a repeat: the first one), or its quarantine item.
    result_id: Mapped[str | None] = mapped_column(String(36))
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=_now)

    __table_args__ = (Index("ix_intake_state_received_at", "state", "received_at"),)
