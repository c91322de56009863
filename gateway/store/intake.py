"""Recording a complaint: evidence, complaint and outbox row in one transaction.

This is the hand-off point of every channel. ``record_complaint`` returns only
once the raw input is fsynced in the blob store and the three rows are
committed; only then may a channel acknowledge its source (SMTP 250, HTTP
2xx, IMAP move, TwiML). A repeated input (same dedup key) returns the
complaint already recorded, with ``created=False``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.store.blobs import BlobStore
from gateway.store.db import reading, writing
from gateway.store.models import ComplaintRow, EventRow, EvidenceRow, OutboxRow, QuarantineRow
from normalizer.assemble import assemble_message
from normalizer.contract import (
    Attachment,
    ComplaintEvent,
    ComplaintMessage,
    Evidence,
    IntakeEvent,
    IntakeEventEnvelope,
)
from normalizer.draft import AttachmentDraft, ComplaintDraft, RawInput
from normalizer.reference import new_reference
from router.topology import event_routing_key, routing_key_for

log = logging.getLogger("intake.store")

EVENT_CONTENT_TYPE = "application/cloudevents+json"
_REFERENCE_ATTEMPTS = 8
T = TypeVar("T")


class StoreUnavailable(Exception):
    """Our fault: the database or the disk failed. Nothing was acknowledged."""


class IdempotencyConflict(Exception):
    """The dedup key was already used for a different request."""

    def __init__(self, existing: ComplaintMessage) -> None:
        super().__init__(f"key already used for complaint {existing.reference}")
        self.existing = existing


@dataclass(frozen=True)
class IntakeResult:
    message: ComplaintMessage
    created: bool


def guarded(action: Callable[[], T]) -> T:
    """Run a store action, turning database and disk failures into ``StoreUnavailable``."""
    try:
        return action()
    except (SQLAlchemyError, OSError) as exc:
        log.error("store failure: %s", type(exc).__name__)
        raise StoreUnavailable(type(exc).__name__) from exc


class ComplaintStore:
    def __init__(self, engine: Engine, blobs: BlobStore, event_source: str) -> None:
        self.engine = engine
        self.blobs = blobs
        self.event_source = event_source

    # -- writing ----------------------------------------------------------
    def record_complaint(
        self, raw: RawInput, draft: ComplaintDraft, available_at: datetime | None = None
    ) -> IntakeResult:
        """``available_at``: hold the outbox row until then (a call waiting for its transcript)."""
        return guarded(lambda: self._record(raw, draft, available_at))

    def _record(
        self, raw: RawInput, draft: ComplaintDraft, available_at: datetime | None = None
    ) -> IntakeResult:
        existing = self._find(raw.dedup_key, raw.request_hash)
        if existing is not None:
            return IntakeResult(existing, created=False)
        if draft.follow_up_of and not self.reference_exists(draft.follow_up_of):
            # A well-formed reference we never issued: keep the text, drop the link.
            log.info("follow-up reference %s is unknown, not linked", draft.follow_up_of)
            draft.follow_up_of = None
        # Bytes reach the disk before any row points at them.
        stored = self.blobs.put(raw.data)
        attachments = [self._store_attachment(item) for item in draft.attachments]
        evidence = _evidence_for(raw, stored.location, stored.sha256, stored.size)
        for _attempt in range(_REFERENCE_ATTEMPTS):
            message = assemble_message(
                draft,
                complaint_id=str(uuid.uuid4()),
                reference=new_reference(),
                evidence=evidence,
                attachments=attachments,
                processed_at=datetime.now(UTC),
            )
            try:
                self._insert(raw, message, available_at)
            except IntegrityError as exc:
                log.debug("insert refused: %s", exc.orig)
                existing = self._find(raw.dedup_key, raw.request_hash)
                if existing is not None:  # a concurrent twin won the race
                    return IntakeResult(existing, created=False)
                continue  # the reference was taken: draw another
            return IntakeResult(message, created=True)
        raise StoreUnavailable("could not draw a free reference")

    def _store_attachment(self, item: AttachmentDraft) -> Attachment:
        stored = self.blobs.put(item.data)
        return Attachment(
            name=item.name,
            content_type=item.content_type or "application/octet-stream",
            declared_type=item.declared_type,
            size=stored.size,
            sha256=stored.sha256,
            stored_at=stored.location,
            ocr_text=item.ocr_text,
        )

    def _insert(
        self, raw: RawInput, message: ComplaintMessage, available_at: datetime | None = None
    ) -> None:
        event = ComplaintEvent.wrap(message, self.event_source)
        with writing(self.engine) as session:
            evidence_id = _add_evidence(session, raw, message.evidence)
            session.add(
                ComplaintRow(
                    id=message.id,
                    reference=message.reference,
                    dedup_key=raw.dedup_key,
                    request_hash=raw.request_hash,
                    channel=message.channel.value,
                    origin=message.origin.value,
                    language=message.language.tag,
                    received_at=message.received_at,
                    ack_due_at=message.ack_due_at,
                    answer_due_at=message.answer_due_at,
                    follow_up_of=message.follow_up_of,
                    evidence_id=evidence_id,
                    message=message.model_dump_json(),
                )
            )
            session.flush()  # surface a duplicate key before the outbox row
            session.add(
                OutboxRow(
                    event_id=message.id,
                    complaint_id=message.id,
                    routing_key=routing_key_for(message),
                    payload=event.model_dump_json().encode(),
                    content_type=EVENT_CONTENT_TYPE,
                    attempts=0,
                    held=False,
                    available_at=available_at,
                )
            )

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
            evidence=_evidence_for(raw, stored.location, stored.sha256, stored.size),
        )
        envelope = IntakeEventEnvelope.wrap(event, self.event_source)
        try:
            with writing(self.engine) as session:
                evidence_id = _add_evidence(session, raw, event.evidence)
                session.add(
                    EventRow(
                        id=event.id,
                        kind=kind,
                        dedup_key=raw.dedup_key,
                        evidence_id=evidence_id,
                        payload=event.model_dump_json(),
                    )
                )
                session.flush()
                session.add(
                    OutboxRow(
                        event_id=event.id,
                        routing_key=event_routing_key(kind),
                        payload=envelope.model_dump_json().encode(),
                        content_type=EVENT_CONTENT_TYPE,
                        attempts=0,
                        held=False,
                    )
                )
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
        data: bytes,
        content_type: str,
        reason_code: str,
        reason: str,
        source_ids: dict[str, object] | None = None,
    ) -> str:
        """Keep input we refused, with why; returns the quarantine id."""

        def action() -> str:
            stored = self.blobs.put(data)
            item_id = str(uuid.uuid4())
            with writing(self.engine) as session:
                session.add(
                    QuarantineRow(
                        id=item_id,
                        channel=channel,
                        reason_code=reason_code,
                        reason=reason,
                        sha256=stored.sha256,
                        size=stored.size,
                        content_type=content_type,
                        stored_at=stored.location,
                        source_ids=dict(source_ids or {}),
                    )
                )
            return item_id

        item_id = guarded(action)
        log.warning("quarantined %s input %s: %s", channel, item_id, reason_code)
        return item_id

    # -- reading ----------------------------------------------------------
    def find_by_dedup_key(
        self, dedup_key: str, request_hash: str | None = None
    ) -> ComplaintMessage | None:
        """The complaint already recorded under this key; ``IdempotencyConflict`` on a reuse."""
        return guarded(lambda: self._find(dedup_key, request_hash))

    def _find(self, dedup_key: str, request_hash: str | None) -> ComplaintMessage | None:
        with reading(self.engine) as session:
            row = session.scalars(
                select(ComplaintRow).where(ComplaintRow.dedup_key == dedup_key)
            ).first()
        if row is None:
            return None
        message = ComplaintMessage.model_validate_json(row.message)
        if request_hash and row.request_hash and request_hash != row.request_hash:
            raise IdempotencyConflict(message)
        return message

    def get_by_reference(self, reference: str) -> ComplaintMessage | None:
        def action() -> ComplaintMessage | None:
            with reading(self.engine) as session:
                row = session.scalars(
                    select(ComplaintRow).where(ComplaintRow.reference == reference)
                ).first()
            return None if row is None else ComplaintMessage.model_validate_json(row.message)

        return guarded(action)

    def reference_exists(self, reference: str) -> bool:
        with reading(self.engine) as session:
            found = session.scalar(
                select(ComplaintRow.id).where(ComplaintRow.reference == reference)
            )
        return found is not None

    def status(self, reference: str) -> tuple[ComplaintMessage, bool] | None:
        """The complaint and whether the broker has confirmed it at least once."""

        def action() -> tuple[ComplaintMessage, bool] | None:
            with reading(self.engine) as session:
                row = session.scalars(
                    select(ComplaintRow).where(ComplaintRow.reference == reference)
                ).first()
                if row is None:
                    return None
                published = session.scalar(
                    select(OutboxRow.id)
                    .where(OutboxRow.complaint_id == row.id, OutboxRow.published_at.is_not(None))
                    .limit(1)
                )
            return ComplaintMessage.model_validate_json(row.message), published is not None

        return guarded(action)


def _evidence_for(raw: RawInput, location: str, sha256: str, size: int) -> Evidence:
    return Evidence(
        stored_at=location,
        sha256=sha256,
        size=size,
        content_type=raw.content_type,
        **{k: v for k, v in raw.source_ids.items() if k in Evidence.model_fields},
    )


def _add_evidence(session: Session, raw: RawInput, evidence: Evidence) -> str:
    evidence_id = str(uuid.uuid4())
    session.add(
        EvidenceRow(
            id=evidence_id,
            channel=raw.channel.value,
            sha256=evidence.sha256,
            size=evidence.size,
            content_type=raw.content_type,
            stored_at=evidence.stored_at,
            source_ids=dict(raw.source_ids),
            message_id=evidence.message_id,
            received_at=raw.received_at,
        )
    )
    session.flush()  # rows carry no ORM relationships: order the inserts by hand
    return evidence_id
