"""What providers report of the acknowledgements handed to them: Twilio's callbacks, bounces.

``gateway.acks`` (Twilio's status callback ``/twilio/acks/status``) or
``channels.email`` (a bounce of our e-mail, RFC 3464) -> **Deliveries.report**
-> one transaction: the delivery's state (forward only); for a final state
the evidence (the callback's form, the bounce), an ``ack.delivered`` or
``ack.undelivered`` event and its outbox row; and when the acknowledgement's
current send is undelivered, its row goes ``undelivered``, due at once: the
workers' poll sends it by the next method (``Acknowledger``), or records it
failed for staff.

States move forward only (``RANK``), so a repeated or late report (``sent``
after ``delivered``) changes nothing, and ``undelivered`` / ``failed`` are
final. ``delivery_report`` gives ``intake ack report`` its counts.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.store.blobs import BlobStore
from gateway.store.complaint_rows import evidence_for
from gateway.store.db import reading, writing
from gateway.store.intake import add_event, guarded
from gateway.store.tables import (
    AckDeliveryRow,
    AcknowledgementRow,
    ComplaintRow,
)
from normalizer.contract import (
    Channel,
    IntakeEvent,
    IntakeEventEnvelope,
    utc_iso,
)
from normalizer.draft import RawInput

# Twilio's message states in the order a message goes through them (an e-mail
# the relay took is ``sent``); the final ones share the highest rank but one.
RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,  # WhatsApp: read after delivered
}
NOT_DELIVERED = frozenset({"undelivered", "failed"})
DELIVERED = frozenset({"delivered", "read"})
DELIVERED_KIND, UNDELIVERED_KIND = "ack.delivered", "ack.undelivered"
# The acknowledgement's row, while it waits for the next method.
UNDELIVERED = "undelivered"


def advances(current: str, new: str) -> bool:
    """Whether ``new`` is news after ``current`` (never back, never past a failure)."""
    if new not in RANK or current in NOT_DELIVERED:
        return False
    return RANK[new] > RANK.get(current, -1)


@dataclass(frozen=True)
class DeliveryNotice:
    """A provider's word on one message: which one (any of the keys), and its state."""

    state: str
    error: str | None = None
    # Twilio's MessageSid.
    provider_id: str | None = None
    # The acknowledgement named by a bounce's VERP address.
    ack_id: str | None = None
    # Message-IDs a bounce quotes (the returned message's, In-Reply-To...).
    message_ids: tuple[str, ...] = ()
    source: str = "twilio"


@dataclass(frozen=True)
class DeliveryOutcome:
    """What ``report`` did."""

    found: bool  # a delivery of ours
    changed: bool = False  # its state moved forward
    resend: bool = False  # the acknowledgement is now the next method's
    complaint_id: str | None = None
    reference: str | None = None
    method: str | None = None
    state: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class Undelivered:
    """An acknowledgement a provider could not deliver, for ``intake ack report``."""

    reference: str
    method: str
    state: str
    error: str | None
    reported_at: datetime | None
    resent: bool
    # Where the acknowledgement stands now (sent by the next method, failed...).
    now_method: str | None
    now_status: str


@dataclass(frozen=True)
class DeliveryReport:
    """Counts per method (delivered / undelivered / pending) and the undelivered ones."""

    counts: dict[str, Counter[str]]
    undelivered: list[Undelivered]


def delivery_class(state: str) -> str:
    """``delivered``, ``undelivered`` or ``pending`` (handed over, no final word yet)."""
    if state in DELIVERED:
        return "delivered"
    if state in NOT_DELIVERED:
        return "undelivered"
    return "pending"


class Deliveries:
    def __init__(self, engine: Engine, blobs: BlobStore, event_source: str) -> None:
        self.engine = engine
        self.blobs = blobs
        self.event_source = event_source

    def report(self, notice: DeliveryNotice, raw: RawInput | None = None) -> DeliveryOutcome:
        """Apply one report; ``raw`` is kept as the evidence of a final state."""
        return guarded(lambda: self._report(notice, raw))

    def _report(self, notice: DeliveryNotice, raw: RawInput | None) -> DeliveryOutcome:
        with reading(self.engine) as session:
            found = _find(session, notice)
            if found is None:
                return DeliveryOutcome(found=False)
            delivery_id, current = found.id, found.status
        if not advances(current, notice.state):
            return _outcome(found, changed=False)
        final = notice.state in DELIVERED or notice.state in NOT_DELIVERED
        stored = self.blobs.put(raw.data) if final and raw is not None else None
        with writing(self.engine) as session:
            delivery = session.get(AckDeliveryRow, delivery_id, with_for_update=True)
            assert delivery is not None  # rows are never deleted
            if not advances(delivery.status, notice.state):
                return _outcome(delivery, changed=False)  # a twin report won the race
            moment = datetime.now(UTC)
            delivery.status, delivery.reported_at = notice.state, moment
            delivery.error = (notice.error or "")[:64] or delivery.error
            ack = session.get(AcknowledgementRow, delivery.ack_id, with_for_update=True)
            complaint = session.get(ComplaintRow, delivery.complaint_id)
            resend = False
            if notice.state in NOT_DELIVERED and ack is not None and _current(ack, delivery):
                ack.status, ack.retry_at, ack.updated_at = UNDELIVERED, moment, moment
                ack.reason = UNDELIVERED
                ack.detail = f"{delivery.method}: {notice.state} {notice.error or ''}".strip()
                ack.rounds = (ack.rounds or 0) + 1
                resend = True
            event_id = None
            if final and raw is not None and stored is not None and complaint is not None:
                event_id = self._add_event(session, delivery, complaint, notice, raw, stored)
            reference = complaint.reference if complaint is not None else None
            return _outcome(
                delivery, changed=True, resend=resend, event_id=event_id, reference=reference
            )

    def _add_event(  # noqa: PLR0917
        self,
        session: Session,
        delivery: AckDeliveryRow,
        complaint: ComplaintRow,
        notice: DeliveryNotice,
        raw: RawInput,
        stored: Any,
    ) -> str:
        kind = UNDELIVERED_KIND if notice.state in NOT_DELIVERED else DELIVERED_KIND
        raw = dataclasses.replace(
            raw,
            channel=Channel(complaint.channel),
            dedup_key=f"ack:{complaint.id}:{kind}:{delivery.id}",
        )
        event = IntakeEvent(
            id=str(uuid.uuid4()),
            kind=kind,
            channel=raw.channel,
            received_at=raw.received_at,
            details={
                "complaint_id": complaint.id,
                "reference": complaint.reference,
                "method": delivery.method,
                "provider_id": delivery.provider_id,
                "status": notice.state,
                "error": notice.error,
                "round": delivery.round,
                "source": notice.source,
                "at": utc_iso(raw.received_at),
                "ack_due_at": complaint.ack_due_at.isoformat(),
            },
            evidence=evidence_for(raw, stored),
        )
        envelope = IntakeEventEnvelope.wrap(event, self.event_source)
        add_event(session, raw, event, envelope)
        return event.id

    def delivery_report(self, since: datetime | None = None) -> DeliveryReport:
        """Deliveries handed over since ``since`` (all without), per method and class."""
        query = (
            select(AckDeliveryRow, AcknowledgementRow)
            .join(AcknowledgementRow, AcknowledgementRow.id == AckDeliveryRow.ack_id)
            .order_by(AckDeliveryRow.created_at)
        )
        if since is not None:
            query = query.where(AckDeliveryRow.created_at >= since)

        def action() -> DeliveryReport:
            counts: dict[str, Counter[str]] = {}
            undelivered: list[Undelivered] = []
            with reading(self.engine) as session:
                for delivery, ack in session.execute(query).all():
                    kind = delivery_class(delivery.status)
                    counts.setdefault(delivery.method, Counter())[kind] += 1
                    if kind == "undelivered":
                        undelivered.append(
                            Undelivered(
                                reference=ack.reference,
                                method=delivery.method,
                                state=delivery.status,
                                error=delivery.error,
                                reported_at=delivery.reported_at,
                                resent=delivery.resent,
                                now_method=ack.method,
                                now_status=ack.status,
                            )
                        )
            return DeliveryReport(counts, undelivered)

        return guarded(action)


def _find(session: Session, notice: DeliveryNotice) -> AckDeliveryRow | None:
    """The delivery a report is about: by MessageSid, VERP acknowledgement, or Message-ID."""
    newest = AckDeliveryRow.created_at.desc()
    if notice.provider_id:
        return session.scalar(
            select(AckDeliveryRow)
            .where(AckDeliveryRow.provider_id == notice.provider_id)
            .order_by(newest)
            .limit(1)
        )
    if notice.ack_id:
        found = session.scalar(
            select(AckDeliveryRow)
            .where(AckDeliveryRow.ack_id == notice.ack_id, AckDeliveryRow.method == "email")
            .order_by(newest)
            .limit(1)
        )
        if found is not None:
            return found
    if notice.message_ids:
        return session.scalar(
            select(AckDeliveryRow)
            .where(
                AckDeliveryRow.provider_id.in_(list(notice.message_ids)),
                AckDeliveryRow.method == "email",
            )
            .order_by(newest)
            .limit(1)
        )
    return None


def _current(ack: AcknowledgementRow, delivery: AckDeliveryRow) -> bool:
    """Whether the delivery is the acknowledgement's latest send (not one replaced since)."""
    return (
        ack.status == "sent"
        and (ack.rounds or 0) == delivery.round
        and ack.provider_id == delivery.provider_id
    )


def _outcome(
    delivery: AckDeliveryRow,
    *,
    changed: bool,
    resend: bool = False,
    event_id: str | None = None,
    reference: str | None = None,
) -> DeliveryOutcome:
    return DeliveryOutcome(
        found=True,
        changed=changed,
        resend=resend,
        complaint_id=delivery.complaint_id,
        reference=reference,
        method=delivery.method,
        state=delivery.status,
        event_id=event_id,
    )
