"""An acknowledgement made by hand: staff called the customer, posted a registered letter, met them.

``/ops/complaints/{reference}`` (a complaint whose automatic acknowledgement
was left to staff: skipped or failed) --POST means + note--> **record_by_hand**
-> ``event.ack.sent`` (the proof, as the acknowledgement worker publishes
it, ``by_hand`` naming the member) -> ``Store.cases.acknowledge_by_hand``
(the row ``sent`` at that moment: the register's ``acknowledged_at``). The
route writes the staff audit trail.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from gateway.lib.services import Services
from gateway.store.acks import FAILED, SENT_KIND, SKIPPED, event_key
from gateway.store.cases import StatusRefused
from normalizer.contract import ComplaintMessage, utc_iso
from normalizer.draft import RawInput

log = logging.getLogger("intake.acks")

# The means the staff form offers (``gateway.store.cases.BY_HAND_METHODS``).
MEANS = ("call", "registered", "in_person")
NOTE_LIMIT = 500


def left_to_staff(services: Services, message: ComplaintMessage) -> bool:
    """Whether the complaint's acknowledgement waits for staff (skipped or failed)."""
    record = services.store.acks.get(message.id)
    return record is not None and record.status in (SKIPPED, FAILED)


def record_by_hand(
    services: Services,
    message: ComplaintMessage,
    *,
    means: str,
    note: str,
    staff: str,
    at: datetime | None = None,
) -> datetime:
    """Record the acknowledgement ``staff`` made by ``means``; the moment recorded.

    ``StatusRefused`` 409 when the acknowledgement was not left to staff (or
    is already made); ``ValueError`` for a means not in ``MEANS``.
    """
    if means not in MEANS:
        raise ValueError(f"unknown means {means!r}")
    if not left_to_staff(services, message):
        raise StatusRefused(
            409,
            "not_left_to_staff",
            f"the acknowledgement of {message.reference} was not left to staff",
        )
    moment = at or datetime.now(UTC)
    note = note.strip()[:NOTE_LIMIT]
    details: dict[str, Any] = {
        "complaint_id": message.id,
        "reference": message.reference,
        "method": means,
        "recipient": None,
        "languages": [],
        "at": utc_iso(moment),
        "ack_due_at": message.ack_due_at.isoformat(),
        "within_deadline": moment <= message.ack_due_at,
        "by_hand": staff,
        "note": note or None,
    }
    raw = RawInput(
        channel=message.channel,
        data=json.dumps(details, ensure_ascii=False).encode(),
        content_type="application/json",
        received_at=moment,
        dedup_key=event_key(message.id, SENT_KIND),
    )
    event, _created = services.store.complaints.record_event(raw, SENT_KIND, details)
    services.store.cases.acknowledge_by_hand(
        message.reference,
        method=means,
        at=moment,
        proof=None,
        note=note or None,
        staff=staff,
        event_id=event.id,
    )
    log.info("acknowledgement of %s made by hand (%s)", message.reference, means)
    return moment
