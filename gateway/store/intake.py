"""Recording a complaint: evidence, complaint and outbox row in one transaction.

This is the hand-off point of every channel. ``record_complaint`` returns only
once the raw input is fsynced in the blob store and the three rows are
committed; only then may a channel acknowledge its source (SMTP 250, HTTP
2xx, IMAP move, TwiML). A repeated input (same dedup key) returns the
complaint already recorded, with ``created=False``.

channel -> **record_complaint** (stage the blobs, render the message, in the
caller's thread) -> ``groupcommit.GroupCommit`` (concurrent callers share
one transaction: ``complaint_rows.write_batch``) -> the caller's own result.

A caller waits for the write lock at most the store's lock timeout
(``INTAKE_STORE_LOCK_TIMEOUT``), counted from when it queued: a batch waits
only until the deadline of its oldest item, so a caller queued behind a batch
that waits for a locked database is not made to wait a second time as long.
Past it, the database error becomes ``StoreUnavailable`` (HTTP 503, SMTP 451,
IMAP mail left in place): nothing was acknowledged.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.store.blobs import BlobStore, StagedBlob, settle
from gateway.store.chain import append as append_to_chain
from gateway.store.complaint_rows import (
    EVENT_CONTENT_TYPE,
    PendingComplaint,
    Written,
    evidence_for,
    evidence_values,
    pending_complaint,
    stored_under,
    write_batch,
)
from gateway.store.db import committing, lock_timeout, read_connection, reading, writing
from gateway.store.groupcommit import GroupCommit
from gateway.store.tables import ComplaintRow, EventRow, EvidenceRow, OutboxRow, QuarantineRow
from normalizer.contract import (
    ComplaintMessage,
    Evidence,
    IntakeEvent,
    IntakeEventEnvelope,
    event_routing_key,
)
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.errors import InputRejected, OurFailure
from normalizer.reference import new_reference

log = logging.getLogger("intake.store")

_REFERENCE_ATTEMPTS = 8
# Items one transaction commits at most (an IMAP batch is 100 by default).
GROUP_MAX_BATCH = 128
T = TypeVar("T")


class StoreUnavailable(OurFailure):
    """Our fault: the database or the disk failed. Nothing was acknowledged."""


class IdempotencyConflict(InputRejected):
    """The dedup key was already used for a different request."""

    def __init__(self, existing: ComplaintMessage) -> None:
        super().__init__(f"key already used for complaint {existing.reference}")
        self.existing = existing


@dataclass(frozen=True)
class IntakeResult:
    message: ComplaintMessage
    created: bool


@dataclass(frozen=True)
class _Queued:
    """A complaint waiting for the group commit, and when its wait for the write lock ends."""

    pending: PendingComplaint
    deadline: float  # time.monotonic()


def guarded(action: Callable[[], T]) -> T:
    """Run a store action, turning database and disk failures into ``StoreUnavailable``."""
    try:
        return action()
    except (SQLAlchemyError, OSError) as exc:
        log.error("store failure: %s", type(exc).__name__)
        raise StoreUnavailable(type(exc).__name__) from exc


@dataclass(frozen=True)
class RefusedHead:
    """What quarantine keeps of refused input nobody vouched for: its head, size and hash.

    ``of(data)`` from bytes in memory; a caller that streamed the input to
    disk builds it from the first bytes and a running sha256.
    """

    head: bytes
    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes, head_bytes: int) -> RefusedHead:
        return cls(head=data[:head_bytes], size=len(data), sha256=hashlib.sha256(data).hexdigest())


class ComplaintStore:
    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        event_source: str,
        *,
        refused_head_bytes: int = 256 * 1024,
        refused_quota_bytes: int = 1024 * 1024 * 1024,
        customer_secret: bytes = b"",
    ) -> None:
        self.engine = engine
        # Keys customers' phones and e-mails (``gateway.store.customers``); empty: no keys.
        self.customer_secret = customer_secret
        self.blobs = blobs
        self.event_source = event_source
        # Refused input kept as its head (``quarantine(..., head_only=True)``):
        # how much of each, and how much of them all before only metadata is kept.
        self.refused_head_bytes = refused_head_bytes
        self.refused_quota_bytes = refused_quota_bytes
        # Now rather than in the first request, whose caller would wait for 256 mkdirs.
        blobs.ensure_layout()
        # Concurrent callers (SMTP ingest threads, the web server's threadpool)
        # share one transaction and one fsync.
        self.group: GroupCommit[_Queued, IntakeResult] = GroupCommit(
            self._commit_batch, max_batch=GROUP_MAX_BATCH
        )

    # -- writing ----------------------------------------------------------
    def record_complaint(
        self, raw: RawInput, draft: ComplaintDraft, available_at: datetime | None = None
    ) -> IntakeResult:
        """``available_at``: hold the outbox row until then (a call waiting for its transcript)."""
        return guarded(
            lambda: self.group.submit(self._queued(self._prepare(raw, draft, available_at)))
        )

    def record_complaints(
        self, items: Sequence[tuple[RawInput, ComplaintDraft]]
    ) -> list[IntakeResult | Exception]:
        """Several complaints in one group commit (an IMAP batch); one outcome per item.

        An item's outcome is its result or its own error (``IdempotencyConflict``,
        ``StoreUnavailable``); the others are committed all the same.
        """
        # All the batch's bytes written, then fsynced: one journal commit serves them all.
        staged = iter(
            self.blobs.stage_many([data for raw, draft in items for data in _datas(raw, draft)])
        )
        prepared = [
            _capture(partial(self._assemble, raw, draft, None, _take(staged, raw, draft)))
            for raw, draft in items
        ]
        for pending in prepared:
            if isinstance(pending, PendingComplaint) and pending.raw.durable:
                pending.folders = pending.folders[1:]  # the raw input's folder is settled
        ready = [self._queued(item) for item in prepared if isinstance(item, PendingComplaint)]
        committed = iter(self.group.submit_many(ready))
        return [
            store_error(next(committed) if isinstance(item, PendingComplaint) else item)
            for item in prepared
        ]

    def _prepare(
        self, raw: RawInput, draft: ComplaintDraft, available_at: datetime | None
    ) -> PendingComplaint:
        """Stage the bytes and render the message, in the caller's thread (no lock held)."""
        staged = self.blobs.stage_many(_datas(raw, draft))
        return self._assemble(raw, draft, available_at, staged)

    def _assemble(
        self,
        raw: RawInput,
        draft: ComplaintDraft,
        available_at: datetime | None,
        staged: Sequence[StagedBlob],
    ) -> PendingComplaint:
        return pending_complaint(
            raw,
            draft,
            staged,
            reference=draft.assigned_reference or new_reference(),
            event_source=self.event_source,
            available_at=available_at,
            customer_secret=self.customer_secret,
        )

    def _queued(self, item: PendingComplaint) -> _Queued:
        return _Queued(item, time.monotonic() + lock_timeout(self.engine))

    def _commit_batch(self, queued: Sequence[_Queued]) -> list[IntakeResult | Exception]:
        items = [entry.pending for entry in queued]
        # The oldest caller's deadline bounds the batch: nobody waits past their own.
        deadline = min(entry.deadline for entry in queued)
        # Bytes reach the disk before any row points at them: each file was
        # fsynced by its caller, the folders are fsynced here once per batch.
        settle(folder for item in items for folder in item.folders)
        if len(items) > 1:
            try:
                with committing(self.engine, lock_wait=_left(deadline)) as connection:
                    written = write_batch(connection, items)
                return [
                    _capture(partial(_result, item, outcome))
                    for item, outcome in zip(items, written, strict=True)
                ]
            except IntegrityError as exc:
                # One item's race or reference collision: the others must not fail with it.
                log.debug("batch of %s refused (%s): one by one", len(items), exc.orig)
        return [_capture(partial(self._commit_one, item, deadline)) for item in items]

    def _commit_one(self, item: PendingComplaint, deadline: float) -> IntakeResult:
        for attempt in range(_REFERENCE_ATTEMPTS):
            if attempt:
                item.change(reference=new_reference())
            try:
                with committing(self.engine, lock_wait=_left(deadline)) as connection:
                    (written,) = write_batch(connection, [item])
                return _result(item, written)
            except IntegrityError as exc:
                log.debug("insert refused: %s", exc.orig)
                with read_connection(self.engine) as connection:
                    twin = stored_under(connection, [item.raw.dedup_key]).get(item.raw.dedup_key)
                if twin is not None:  # a concurrent writer won the race
                    return _result(item, twin)
                # else the reference was taken: draw another
        raise StoreUnavailable("could not draw a free reference")

    def record_event(
        self, raw: RawInput, kind: str, details: dict[str, Any]
    ) -> tuple[IntakeEvent, bool]:
        """Store an input that is not a complaint and queue it as ``event.<kind>``.

        Returns the event and whether it is new (a repeat returns the first one).
        """
        return guarded(lambda: self._record_event(raw, kind, details))

    def _record_event(
        self, raw: RawInput, kind: str, details: dict[str, Any]
    ) -> tuple[IntakeEvent, bool]:
        existing = self._find_event(raw.dedup_key)
        if existing is not None:
            return existing, False
        stored = self.blobs.put(raw.data)
        event = IntakeEvent(
            id=str(uuid.uuid4()),
            kind=kind,
            channel=raw.channel,
            received_at=raw.received_at,
            details=details,
            evidence=evidence_for(raw, stored),
        )
        envelope = IntakeEventEnvelope.wrap(event, self.event_source)
        try:
            with writing(self.engine) as session:
                add_event(session, raw, event, envelope)
        except IntegrityError:
            twin = self._find_event(raw.dedup_key)
            if twin is None:
                raise
            return twin, False
        return event, True

    def _find_event(self, dedup_key: str) -> IntakeEvent | None:
        with reading(self.engine) as session:
            payload = session.scalar(
                select(EventRow.payload).where(EventRow.dedup_key == dedup_key)
            )
        return None if payload is None else IntakeEvent.model_validate_json(payload)

    def reference_for_message_ids(self, message_ids: Sequence[str]) -> str | None:
        """The complaint whose e-mail had one of these Message-IDs (newest first)."""
        if not message_ids:
            return None

        def action() -> str | None:
            with reading(self.engine) as session:
                return session.scalar(
                    select(ComplaintRow.reference)
                    .join(EvidenceRow, ComplaintRow.evidence_id == EvidenceRow.id)
                    .where(EvidenceRow.message_id.in_(list(message_ids)))
                    .order_by(ComplaintRow.received_at.desc())
                    .limit(1)
                )

        return guarded(action)

    def quarantine(
        self,
        *,
        channel: str,
        data: bytes | RefusedHead,
        content_type: str,
        reason_code: str,
        reason: str,
        source_ids: dict[str, object] | None = None,
        head_only: bool = False,
    ) -> str:
        """Keep input we refused, with why; returns the quarantine id.

        ``head_only`` (always so for a ``RefusedHead``): input anyone can send
        for free (a form post, a mail to a public MX) keeps only its first
        ``refused_head_bytes``, with the whole input's size and sha256, and
        nothing but this metadata once the heads kept reach
        ``refused_quota_bytes`` (a warning in the log then). Such an item can
        be shown (``quarantine show --raw`` writes the head) but not
        reprocessed when it is not whole.
        """
        if isinstance(data, RefusedHead) or head_only:
            refused = (
                data
                if isinstance(data, RefusedHead)
                else RefusedHead.of(data, self.refused_head_bytes)
            )
            return self._quarantine_head(
                channel, refused, content_type, reason_code, reason, source_ids
            )
        assert isinstance(data, bytes)
        whole = data

        def action() -> str:
            stored = self.blobs.put(whole)
            return self._add_quarantined(
                channel,
                reason_code,
                reason,
                stored.sha256,
                stored.size,
                content_type,
                stored.location,
                source_ids,
                None,
            )

        item_id = guarded(action)
        log.warning("quarantined %s input %s: %s", channel, item_id, reason_code)
        return item_id

    def _quarantine_head(  # noqa: PLR0917
        self,
        channel: str,
        refused: RefusedHead,
        content_type: str,
        reason_code: str,
        reason: str,
        source_ids: dict[str, object] | None,
    ) -> str:
        head = refused.head[: self.refused_head_bytes]

        def action() -> str:
            if head and self._refused_bytes_kept() + len(head) > self.refused_quota_bytes:
                log.warning(
                    "quarantine quota for refused input reached (%s bytes): %s input kept "
                    "as metadata only",
                    self.refused_quota_bytes,
                    channel,
                )
                kept = b""
            else:
                kept = head
            stored = self.blobs.put(kept)
            return self._add_quarantined(
                channel,
                reason_code,
                reason,
                refused.sha256,
                refused.size,
                content_type,
                stored.location,
                source_ids,
                len(kept),
            )

        item_id = guarded(action)
        log.warning(
            "quarantined %s input %s: %s (kept %s of %s bytes)",
            channel,
            item_id,
            reason_code,
            min(len(head), refused.size),
            refused.size,
        )
        return item_id

    def _refused_bytes_kept(self) -> int:
        query = select(func.coalesce(func.sum(QuarantineRow.kept_bytes), 0))
        with reading(self.engine) as session:
            return int(session.scalar(query) or 0)

    def _add_quarantined(  # noqa: PLR0917
        self,
        channel: str,
        reason_code: str,
        reason: str,
        sha256: str,
        size: int,
        content_type: str,
        stored_at: str,
        source_ids: dict[str, object] | None,
        kept_bytes: int | None,
    ) -> str:
        item_id = str(uuid.uuid4())
        with writing(self.engine) as session:
            session.add(
                QuarantineRow(
                    id=item_id,
                    channel=channel,
                    reason_code=reason_code,
                    reason=reason,
                    sha256=sha256,
                    size=size,
                    content_type=content_type,
                    stored_at=stored_at,
                    source_ids=dict(source_ids or {}),
                    kept_bytes=kept_bytes,
                )
            )
        return item_id

    # -- reading ----------------------------------------------------------
    def find_by_dedup_key(
        self, dedup_key: str, request_hash: str | None = None
    ) -> ComplaintMessage | None:
        """The complaint already recorded under this key; ``IdempotencyConflict`` on a reuse."""
        return guarded(lambda: self._find(dedup_key, request_hash))

    def _find(self, dedup_key: str, request_hash: str | None) -> ComplaintMessage | None:
        with read_connection(self.engine) as connection:
            written = stored_under(connection, [dedup_key]).get(dedup_key)
        if written is None:
            return None
        if request_hash and written.request_hash and request_hash != written.request_hash:
            raise IdempotencyConflict(written.message)
        return written.message

    def get_by_reference(self, reference: str) -> ComplaintMessage | None:
        found = self.status(reference)
        return None if found is None else found[0]

    def reference_exists(self, reference: str) -> bool:
        with read_connection(self.engine) as connection:
            found = connection.scalar(
                select(ComplaintRow.id).where(ComplaintRow.reference == reference)
            )
        return found is not None

    def status(self, reference: str) -> tuple[ComplaintMessage, bool] | None:
        """The complaint and whether the broker has confirmed it at least once."""

        def action() -> tuple[ComplaintMessage, bool] | None:
            sent = OutboxRow.published_at.is_not(None)
            published = select(OutboxRow.id).where(OutboxRow.complaint_id == ComplaintRow.id, sent)
            with read_connection(self.engine) as connection:
                row = connection.execute(
                    select(ComplaintRow.message, published.exists()).where(
                        ComplaintRow.reference == reference
                    )
                ).first()
            if row is None:
                return None
            return ComplaintMessage.model_validate_json(row[0]), bool(row[1])

        return guarded(action)


def _left(deadline: float) -> float:
    """Seconds left until ``deadline``, 0 once past it (a wait of 0 still tries the lock once)."""
    return max(0.0, deadline - time.monotonic())


def _datas(raw: RawInput, draft: ComplaintDraft) -> list[bytes]:
    """What a complaint stores as blobs: the raw input, then each attachment."""
    return [raw.data, *(item.data for item in draft.attachments)]


def _take(staged: Iterator[StagedBlob], raw: RawInput, draft: ComplaintDraft) -> list[StagedBlob]:
    return [next(staged) for _ in range(1 + len(draft.attachments))]


def _result(item: PendingComplaint, written: Written) -> IntakeResult:
    """What the caller gets: its complaint, or the first one under its key."""
    request_hash = item.raw.request_hash
    if not written.created and request_hash and written.request_hash not in (None, request_hash):
        raise IdempotencyConflict(written.message)
    return IntakeResult(written.message, created=written.created)


def _capture(action: Callable[[], T]) -> T | Exception:
    try:
        return action()
    except Exception as exc:
        return exc


def store_error(outcome: T | Exception) -> T | Exception:
    """Database and disk failures become ``StoreUnavailable``, as ``guarded`` makes them."""
    if isinstance(outcome, SQLAlchemyError | OSError):
        log.error("store failure: %s", type(outcome).__name__)
        unavailable = StoreUnavailable(type(outcome).__name__)
        unavailable.__cause__ = outcome
        return unavailable
    return outcome


def add_event(
    session: Session, raw: RawInput, event: IntakeEvent, envelope: IntakeEventEnvelope
) -> None:
    """An intake event's evidence, row and outbox row, and its entry in the evidence log."""
    evidence_row = _add_evidence(session, raw, event.evidence)
    session.add(
        EventRow(
            id=event.id,
            kind=event.kind,
            dedup_key=raw.dedup_key,
            evidence_id=evidence_row["id"],
            payload=event.model_dump_json(),
        )
    )
    session.flush()
    session.add(
        OutboxRow(
            event_id=event.id,
            routing_key=event_routing_key(event.kind),
            payload=envelope.model_dump_json().encode(),
            content_type=EVENT_CONTENT_TYPE,
            attempts=0,
            held=False,
        )
    )
    session.flush()
    # Last: on PostgreSQL the chain's head stays locked until the commit.
    append_to_chain(session.connection(), [evidence_row])


def _add_evidence(session: Session, raw: RawInput, evidence: Evidence) -> dict[str, Any]:
    """The evidence row added (and flushed); chain it last (``append_to_chain``)."""
    row = evidence_values(raw, evidence, str(uuid.uuid4()))
    session.add(EvidenceRow(**row))
    session.flush()  # rows carry no ORM relationships: order the inserts by hand
    return row
