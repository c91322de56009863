"""The acknowledgements table: one row per complaint, what happened to its acknowledgement.

``Acknowledger`` -> **AckStore** (claim, finish, skip; daily counts; letters
waiting for the mailroom; complaints still unacknowledged) -> the
``acknowledgements`` table (migration 0007).

The row is unique per complaint: a complaint delivered twice finds its row
and is not acknowledged twice. A row is ``sending`` while a message is on
its way, then ``sent`` or ``failed``; a letter is ``queued`` until the
mailroom marks it posted; ``skipped`` says why nothing was sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.customer_facing import AcknowledgementRow
from gateway.store.db import reading, writing
from gateway.store.intake import guarded
from gateway.store.models import ComplaintRow, EventRow
from normalizer.contract import ComplaintMessage

SENDING, SENT, QUEUED, FAILED, SKIPPED = "sending", "sent", "queued", "failed", "skipped"
# States that count against a recipient's daily allowance.
COUNTED = (SENDING, SENT, QUEUED)
_DETAIL_LIMIT = 2000


@dataclass(frozen=True)
class AckRecord:
    id: str
    complaint_id: str
    reference: str
    method: str | None
    recipient: str | None
    status: str
    reason: str | None
    message_id: str | None
    document: str | None
    attempts: int
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Overdue:
    """A complaint without a sent acknowledgement, for ``intake ack report``."""

    reference: str
    channel: str
    received_at: datetime
    ack_due_at: datetime
    status: str  # "none" when the worker never saw it
    reason: str | None


def _record(row: AcknowledgementRow) -> AckRecord:
    return AckRecord(
        id=row.id,
        complaint_id=row.complaint_id,
        reference=row.reference,
        method=row.method,
        recipient=row.recipient,
        status=row.status,
        reason=row.reason,
        message_id=row.message_id,
        document=row.document,
        attempts=row.attempts,
        sent_at=row.sent_at,
        created_at=row.created_at,
    )


class AckStore:
    def __init__(self, engine: Engine, zone: str) -> None:
        self.engine = engine
        self.zone = ZoneInfo(zone)

    def get(self, complaint_id: str) -> AckRecord | None:
        def action() -> AckRecord | None:
            with reading(self.engine) as session:
                row = session.scalar(
                    select(AcknowledgementRow).where(
                        AcknowledgementRow.complaint_id == complaint_id
                    )
                )
                return None if row is None else _record(row)

        return guarded(action)

    def open(
        self,
        message: ComplaintMessage,
        status: str,
        *,
        method: str | None = None,
        recipient: str | None = None,
        languages: tuple[str, ...] = (),
        reason: str | None = None,
        detail: str | None = None,
        message_id: str | None = None,
    ) -> AckRecord:
        """Insert the complaint's row; if a twin worker was first, return its row."""
        row = AcknowledgementRow(
            id=str(uuid.uuid4()),
            complaint_id=message.id,
            reference=message.reference,
            method=method,
            recipient=recipient,
            languages=",".join(languages),
            status=status,
            reason=reason,
            detail=(detail or "")[:_DETAIL_LIMIT] or None,
            message_id=message_id,
            attempts=0,
        )

        def action() -> AckRecord:
            try:
                with writing(self.engine) as session:
                    session.add(row)
                    session.flush()
                    return _record(row)
            except IntegrityError:
                existing = self.get(message.id)
                if existing is None:
                    raise
                return existing

        return guarded(action)

    def finish(self, complaint_id: str, status: str, **fields: object) -> None:
        """Move the row to ``status``, setting any other column given."""
        values = {"status": status, "updated_at": datetime.now(UTC), **fields}
        if isinstance(values.get("detail"), str):
            values["detail"] = str(values["detail"])[:_DETAIL_LIMIT]

        def action() -> None:
            with writing(self.engine) as session:
                session.execute(
                    update(AcknowledgementRow)
                    .where(AcknowledgementRow.complaint_id == complaint_id)
                    .values(**values)
                )

        guarded(action)

    def count_attempt(self, complaint_id: str, error: str) -> None:
        def action() -> None:
            with writing(self.engine) as session:
                session.execute(
                    update(AcknowledgementRow)
                    .where(AcknowledgementRow.complaint_id == complaint_id)
                    .values(
                        attempts=AcknowledgementRow.attempts + 1,
                        detail=error[:_DETAIL_LIMIT],
                        updated_at=datetime.now(UTC),
                    )
                )

        guarded(action)

    def sent_today(self, recipient: str, now: datetime | None = None) -> int:
        """Acknowledgements to this recipient since local midnight (Africa/Casablanca)."""
        local = (now or datetime.now(UTC)).astimezone(self.zone)
        midnight = datetime.combine(local.date(), time(0), tzinfo=self.zone)

        def action() -> int:
            with reading(self.engine) as session:
                return int(
                    session.scalar(
                        select(func.count())
                        .select_from(AcknowledgementRow)
                        .where(
                            AcknowledgementRow.recipient == recipient,
                            AcknowledgementRow.status.in_(COUNTED),
                            AcknowledgementRow.created_at >= midnight,
                        )
                    )
                    or 0
                )

        return guarded(action)

    def event_recorded(self, dedup_key: str) -> bool:
        """Whether the event of an acknowledgement (``ack.sent``...) is already in the outbox."""

        def action() -> bool:
            with reading(self.engine) as session:
                found = session.scalar(select(EventRow.id).where(EventRow.dedup_key == dedup_key))
                return found is not None

        return guarded(action)

    def letters(self, status: str = QUEUED) -> list[AckRecord]:
        def action() -> list[AckRecord]:
            with reading(self.engine) as session:
                rows = session.scalars(
                    select(AcknowledgementRow)
                    .where(
                        AcknowledgementRow.method == "letter",
                        AcknowledgementRow.status == status,
                    )
                    .order_by(AcknowledgementRow.created_at)
                )
                return [_record(row) for row in rows]

        return guarded(action)

    def by_id(self, ack_id: str) -> AckRecord | None:
        def action() -> AckRecord | None:
            with reading(self.engine) as session:
                row = session.get(AcknowledgementRow, ack_id)
                return None if row is None else _record(row)

        return guarded(action)

    def overdue(self, days: int, now: datetime | None = None) -> list[Overdue]:
        """Complaints received more than ``days`` ago whose acknowledgement was not sent.

        Follow-ups are left out: they continue a complaint acknowledged before.
        """
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        query = (
            select(ComplaintRow, AcknowledgementRow)
            .outerjoin(AcknowledgementRow, AcknowledgementRow.complaint_id == ComplaintRow.id)
            .where(
                ComplaintRow.received_at <= cutoff,
                ComplaintRow.follow_up_of.is_(None),
                (AcknowledgementRow.id.is_(None)) | (AcknowledgementRow.status != SENT),
            )
            .order_by(ComplaintRow.received_at)
        )

        def action() -> list[Overdue]:
            with reading(self.engine) as session:
                return [
                    Overdue(
                        reference=complaint.reference,
                        channel=complaint.channel,
                        received_at=complaint.received_at,
                        ack_due_at=complaint.ack_due_at,
                        status=ack.status if ack else "none",
                        reason=ack.reason if ack else None,
                    )
                    for complaint, ack in session.execute(query).all()
                ]

        return guarded(action)
