"""Inputs the triage found not to be complaints: kept, published as events, sorted by staff.

``channels.handoff`` (a draft whose triage is not ``complaint``) -> **record**:
the raw input and attachments fsynced, then one transaction: the evidence
row and its log entry, the ``events`` row (``triage.<kind>``), this table's
row (the complaint it would be) and the outbox row of the event. No
complaint row, no complaint on the queue, so no acknowledgement.

The staff page "to sort" -> **make_complaint**: the complaint it would have
been, with its reference and its deadlines from the original receipt, is
written as any complaint (``complaint_rows.write_batch``: evidence,
complaint, outbox, in one transaction with this row's new state), then
published and acknowledged like the others; or **confirm**: it stays a
non-complaint. Both say who decided and when.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.blobs import BlobStore
from gateway.store.chain import append as append_to_chain
from gateway.store.complaint_rows import (
    EVENT_CONTENT_TYPE,
    PendingComplaint,
    evidence_for,
    evidence_values,
    stored_under,
    write_batch,
)
from gateway.store.db import committing, read_connection, reading
from gateway.store.intake import IntakeResult, StoreUnavailable, guarded
from gateway.store.tables import (
    CONFIRMED,
    MADE_COMPLAINT,
    TO_SORT,
    EventRow,
    EvidenceRow,
    OutboxRow,
    TriageRow,
)
from normalizer.assemble import assemble_message
from normalizer.contract import (
    Attachment,
    Channel,
    ComplaintMessage,
    IntakeEvent,
    IntakeEventEnvelope,
    Triage,
    event_routing_key,
)
from normalizer.customer import contact_keys
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.errors import InputRejected
from normalizer.reference import new_reference

log = logging.getLogger("intake.triage")

_REFERENCE_ATTEMPTS = 8
# The text an event carries of the input, for a consumer to see what it was.
_EXCERPT_CHARS = 280


class TriageConflict(InputRejected):
    """The item was already decided otherwise (made a complaint: it cannot go back)."""


@dataclass(frozen=True)
class TriageItem:
    id: str
    kind: str
    channel: str
    received_at: datetime
    reference: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    complaint_id: str | None
    message: ComplaintMessage


def event_kind(kind: str) -> str:
    """``triage.<kind>``, the event's kind (routing key ``event.triage.<kind>``)."""
    return f"triage.{kind}"


def _item(row: TriageRow) -> TriageItem:
    return TriageItem(
        id=row.id,
        kind=row.kind,
        channel=row.channel,
        received_at=row.received_at,
        reference=row.reference,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        complaint_id=row.complaint_id,
        message=ComplaintMessage.model_validate_json(row.message),
    )


class TriageStore:
    def __init__(
        self, engine: Engine, blobs: BlobStore, event_source: str, customer_secret: bytes = b""
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.event_source = event_source
        # Keys the complaint a person makes, like any complaint (``normalizer.customer``).
        self.customer_secret = customer_secret

    # -- intake -----------------------------------------------------------
    def record(self, raw: RawInput, draft: ComplaintDraft) -> IntakeResult:
        """Keep a non-complaint; returns the complaint it would be (``triage.kind`` says not).

        A repeat returns what the first one became: the same non-complaint,
        or the complaint a person made of it.
        """
        return guarded(lambda: self._record(raw, draft))

    def _record(self, raw: RawInput, draft: ComplaintDraft) -> IntakeResult:
        found = self._already(raw.dedup_key)
        if found is not None:
            return found
        raw_blob = self.blobs.put(raw.data)
        attachments = [self.blobs.put(item.data) for item in draft.attachments]
        event_id = str(uuid.uuid4())
        for attempt in range(_REFERENCE_ATTEMPTS):
            # A capture's: the reference its sender was told (drawn again only on a collision).
            assigned = draft.assigned_reference if attempt == 0 else None
            message = assemble_message(
                draft,
                complaint_id=draft.assigned_id or str(uuid.uuid4()),
                reference=assigned or new_reference(),
                evidence=evidence_for(raw, raw_blob),
                attachments=[
                    Attachment(
                        name=item.name,
                        content_type=item.content_type or "application/octet-stream",
                        declared_type=item.declared_type,
                        size=stored.size,
                        sha256=stored.sha256,
                        stored_at=stored.location,
                        ocr_text=item.ocr_text,
                    )
                    for item, stored in zip(draft.attachments, attachments, strict=True)
                ],
                processed_at=datetime.now(UTC),
            )
            try:
                self._insert(raw, message, event_id)
            except IntegrityError:
                found = self._already(raw.dedup_key)
                if found is not None:  # a concurrent repeat won the race
                    return found
                log.debug("reference drawn twice (attempt %s): another", attempt + 1)
                continue
            assert message.triage is not None
            log.info(
                "%s input kept as non-complaint %s (%s), not acknowledged",
                raw.channel.value,
                event_id,
                message.triage.kind,
            )
            return IntakeResult(message, created=True)
        raise StoreUnavailable("could not draw a free reference")

    def _insert(self, raw: RawInput, message: ComplaintMessage, event_id: str) -> None:
        assert message.triage is not None
        kind = message.triage.kind
        event = IntakeEvent(
            id=event_id,
            kind=event_kind(kind),
            channel=raw.channel,
            received_at=raw.received_at,
            details={
                "reference": message.reference,
                "subject": message.subject,
                "excerpt": message.body[:_EXCERPT_CHARS],
                "attachments": len(message.attachments),
            },
            triage=message.triage,
            evidence=message.evidence,
        )
        envelope = IntakeEventEnvelope.wrap(event, self.event_source)
        now = datetime.now(UTC)
        evidence = {
            **evidence_values(raw, message.evidence, str(uuid.uuid4())),
            "created_at": now,
        }
        with committing(self.engine) as connection:
            connection.execute(EvidenceRow.__table__.insert(), [evidence])  # type: ignore[attr-defined]
            connection.execute(
                EventRow.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "id": event_id,
                        "kind": event.kind,
                        "dedup_key": raw.dedup_key,
                        "evidence_id": evidence["id"],
                        "payload": event.model_dump_json(),
                        "created_at": now,
                    }
                ],
            )
            connection.execute(
                TriageRow.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "id": event_id,
                        "dedup_key": raw.dedup_key,
                        "kind": kind,
                        "channel": raw.channel.value,
                        "received_at": raw.received_at,
                        "reference": message.reference,
                        "message": message.model_dump_json(),
                        "status": TO_SORT,
                        "created_at": now,
                    }
                ],
            )
            connection.execute(
                OutboxRow.__table__.insert(),  # type: ignore[attr-defined]
                [
                    {
                        "event_id": event_id,
                        "routing_key": event_routing_key(event.kind),
                        "payload": envelope.model_dump_json().encode(),
                        "content_type": EVENT_CONTENT_TYPE,
                        "attempts": 0,
                        "held": False,
                        "created_at": now,
                    }
                ],
            )
            # Last: on PostgreSQL the chain's head stays locked until the commit.
            append_to_chain(connection, [evidence])

    def _already(self, dedup_key: str) -> IntakeResult | None:
        """What a repeat gets: the complaint made of it, else the non-complaint kept."""
        with read_connection(self.engine) as connection:
            complaint = stored_under(connection, [dedup_key]).get(dedup_key)
            if complaint is not None:
                return IntakeResult(complaint.message, created=False)
            kept = connection.scalar(
                select(TriageRow.message).where(TriageRow.dedup_key == dedup_key)
            )
        if kept is None:
            return None
        return IntakeResult(ComplaintMessage.model_validate_json(kept), created=False)

    # -- the staff page ---------------------------------------------------
    def listing(self, status: str = TO_SORT, limit: int = 100) -> list[TriageItem]:
        """Items in ``status``, oldest receipt first (the legal clock runs from it)."""

        def action() -> list[TriageItem]:
            query = (
                select(TriageRow)
                .where(TriageRow.status == status)
                .order_by(TriageRow.received_at, TriageRow.id)
                .limit(limit)
            )
            with reading(self.engine) as session:
                return [_item(row) for row in session.scalars(query)]

        return guarded(action)

    def counts(self) -> dict[str, int]:
        """How many items are in each state."""

        def action() -> dict[str, int]:
            query = select(TriageRow.status, func.count()).group_by(TriageRow.status)
            with reading(self.engine) as session:
                return {status: int(count) for status, count in session.execute(query)}

        return guarded(action)

    def waiting(self) -> tuple[dict[str, int], datetime | None]:
        """Items to sort by kind, and the oldest one's receipt (its legal clock runs)."""

        def action() -> tuple[dict[str, int], datetime | None]:
            to_sort = TriageRow.status == TO_SORT
            with reading(self.engine) as session:
                by_kind = session.execute(
                    select(TriageRow.kind, func.count()).where(to_sort).group_by(TriageRow.kind)
                )
                counts = {kind: int(count) for kind, count in by_kind}
                oldest = session.scalar(select(func.min(TriageRow.received_at)).where(to_sort))
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)  # SQLite hands naive datetimes back
            return counts, oldest

        return guarded(action)

    def get(self, item_id: str) -> TriageItem | None:
        def action() -> TriageItem | None:
            with reading(self.engine) as session:
                row = session.get(TriageRow, item_id)
                return None if row is None else _item(row)

        return guarded(action)

    def confirm(self, item_id: str, actor: str) -> TriageItem | None:
        """A person agrees it is not a complaint. None: no such item.

        Confirming again is harmless; an item already made a complaint stays one
        (``TriageConflict``).
        """
        item = self.get(item_id)
        if item is None:
            return None
        if item.status == MADE_COMPLAINT:
            raise TriageConflict(f"{item.reference} is already a complaint")
        if item.status == CONFIRMED:
            return item
        now = datetime.now(UTC)

        def action() -> None:
            with committing(self.engine) as connection:
                connection.execute(
                    update(TriageRow)
                    .where(TriageRow.id == item_id, TriageRow.status == TO_SORT)
                    .values(status=CONFIRMED, decided_by=actor, decided_at=now)
                )

        guarded(action)
        return self.get(item_id)

    def make_complaint(self, item_id: str, actor: str) -> ComplaintMessage | None:
        """Turn an item into the complaint it would have been; None: no such item.

        The complaint keeps its reference, ``received_at`` and deadlines (the
        legal clock started at the original receipt); ``triage`` says a person
        decided, who, when, and what the triage had suggested. Doing it twice
        gives the same complaint.
        """
        return guarded(lambda: self._make_complaint(item_id, actor))

    def _make_complaint(self, item_id: str, actor: str) -> ComplaintMessage | None:
        with reading(self.engine) as session:
            row = session.get(TriageRow, item_id)
            if row is None:
                return None
            evidence = session.get(EvidenceRow, session.get(EventRow, item_id).evidence_id)  # type: ignore[union-attr]
            assert evidence is not None
            kept = ComplaintMessage.model_validate_json(row.message)
            dedup_key = row.dedup_key
            raw = RawInput(
                channel=Channel(evidence.channel),
                data=b"",
                content_type=evidence.content_type,
                received_at=evidence.received_at,
                dedup_key=dedup_key,
                source_ids=dict(evidence.source_ids or {}),
            )
        now = datetime.now(UTC)
        message = kept.model_copy(
            update={
                "processed_at": now,
                "triage": Triage(
                    kind="complaint",
                    method="staff",
                    reasons=list(kept.triage.reasons) if kept.triage else [],
                    score=kept.triage.score if kept.triage else None,
                    suggested=row.kind,
                    decided_by=actor,
                    decided_at=now,
                ),
            }
        )
        keys = (
            tuple(contact_keys(message.customer, self.customer_secret, message.origin))
            if self.customer_secret
            else ()
        )
        pending = PendingComplaint(
            raw, message, self.event_source, contact_keys=keys, evidence_id=evidence.id
        )
        with committing(self.engine) as connection:
            (written,) = write_batch(connection, [pending], triaged_too=False)
            changed = connection.execute(
                update(TriageRow)
                .where(TriageRow.id == item_id, TriageRow.status != MADE_COMPLAINT)
                .values(
                    status=MADE_COMPLAINT,
                    decided_by=actor,
                    decided_at=now,
                    complaint_id=written.message.id,
                )
            )
        if changed.rowcount:
            log.info("non-complaint %s made complaint %s", item_id, written.message.reference)
        return written.message
