"""A customer's access and erasure requests (law 09-08), by phone number or e-mail address.

``intake personal-data export|erase`` -> **PersonalData.find** (the
complaints whose customer has this phone, E.164, or this e-mail, lower-case;
the calls from that number and those to return to it; the
acknowledgements sent to it) -> **export**
(everything held, as documents and blob files) or **erase** (the content
removed as the retention purge removes it, ``gateway.store.redaction``,
with the reason ``erasure`` in the evidence log).

An erasure keeps the regulatory record (reference, channel, dates,
deadlines, hashes, sizes, counts): Bank Al-Maghrib's register and the
evidence log's chain need it, and it names nobody once the content is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select, update

from gateway.store.blobs import SCHEME, BlobMissing, BlobStore
from gateway.store.db import committing, read_connection
from gateway.store.evidence import ROOT_KIND
from gateway.store.redaction import (
    content_removed,
    redact_complaint,
    redact_event,
    unlink_removed,
)
from gateway.store.tables import (
    AcknowledgementRow,
    CallBackRow,
    CallRow,
    ComplaintRow,
    ComplaintStateRow,
    EventRow,
    EvidenceRow,
)

ERASURE = "erasure"
_OPEN = ("received", "in_progress", "extended")


@dataclass(frozen=True)
class Subject:
    """Whose data: a phone number (E.164) or an e-mail address (lower-case)."""

    phone: str | None = None
    email: str | None = None

    def describe(self) -> str:
        return self.phone or self.email or ""

    def matches(self, customer: dict[str, Any]) -> bool:
        if self.phone is not None and customer.get("phone") == self.phone:
            return True
        email = customer.get("email")
        return self.email is not None and isinstance(email, str) and email.lower() == self.email


@dataclass(frozen=True)
class Held:
    """One complaint held on the subject."""

    id: str
    reference: str
    evidence_id: str
    message: dict[str, Any]
    evidence: dict[str, Any]
    received_at: datetime
    answer_due_at: datetime
    status: str | None  # the reported state; None: nothing reported
    erased: bool  # content already removed (purge or an earlier erasure)

    def still_open(self, now: datetime) -> bool:
        """Within its legal answer period, or reported as still being handled."""
        if self.status is not None:
            return self.status in _OPEN
        return now <= self.answer_due_at


@dataclass
class Holdings:
    subject: Subject
    complaints: list[Held] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    acknowledgements: list[dict[str, Any]] = field(default_factory=list)
    # Intake events naming the phone or e-mail (missed calls, auto-replies), with evidence.
    events: list[dict[str, Any]] = field(default_factory=list)
    # Calls from the number staff were to return, and what came of it (``call_backs``).
    call_backs: list[dict[str, Any]] = field(default_factory=list)

    def blobs(self) -> dict[str, str]:
        """sha256 -> what it is (raw input, attachment, acknowledgement) of every blob held."""
        found: dict[str, str] = {}
        for held in self.complaints:
            found.setdefault(held.evidence["sha256"], f"{held.reference} raw input")
            for item in held.message.get("attachments") or []:
                found.setdefault(item["sha256"], f"{held.reference} attachment")
        for event in self.events:
            found.setdefault(event["evidence"]["sha256"], f"event {event['kind']} raw input")
        for ack in self.acknowledgements:
            if ack.get("document"):
                found.setdefault(ack["document"].removeprefix(SCHEME), "acknowledgement")
        return found


@dataclass
class Erased:
    references: list[str] = field(default_factory=list)
    events: int = 0
    blobs: int = 0
    files_deleted: int = 0


class PersonalData:
    def __init__(self, engine: Engine, blobs: BlobStore) -> None:
        self.engine = engine
        self.blobs = blobs

    def find(self, subject: Subject) -> Holdings:
        """Everything the store holds on ``subject``."""
        holdings = Holdings(subject)
        with read_connection(self.engine) as connection:
            erased = content_removed(connection)
            for row in _complaints_naming(connection, subject):
                message = json.loads(row.message)
                if not subject.matches(message.get("customer") or {}):
                    continue
                holdings.complaints.append(_held(connection, row, message, erased))
            ids = [held.id for held in holdings.complaints]
            holdings.acknowledgements = _rows(
                connection,
                select(AcknowledgementRow).where(
                    or_(
                        AcknowledgementRow.complaint_id.in_(ids),
                        AcknowledgementRow.recipient == subject.describe(),
                    )
                ),
            )
            holdings.events = _events_naming(connection, subject, erased)
            if subject.phone is not None:
                holdings.calls = _rows(
                    connection, select(CallRow).where(CallRow.caller == subject.phone)
                )
                holdings.call_backs = _rows(
                    connection, select(CallBackRow).where(CallBackRow.caller == subject.phone)
                )
        return holdings

    def blob(self, sha256: str) -> bytes | None:
        """A blob's bytes, checked; None when it is gone (purged or erased)."""
        try:
            return self.blobs.get(sha256)
        except BlobMissing:
            return None

    def erase(self, holdings: Holdings) -> Erased:
        """Remove the content of each complaint held (one transaction each), then its files."""
        result = Erased()
        for held in holdings.complaints:
            if held.erased:
                continue
            with committing(self.engine) as connection:
                redacted = redact_complaint(connection, held.id, ERASURE)
            with committing(self.engine) as connection:
                result.files_deleted += unlink_removed(connection, self.blobs, redacted.blobs)
            result.references.append(redacted.reference)
            result.blobs += len(redacted.blobs)
        for event in holdings.events:
            with committing(self.engine) as connection:
                redacted = redact_event(connection, event["id"], ERASURE)
            with committing(self.engine) as connection:
                result.files_deleted += unlink_removed(connection, self.blobs, redacted.blobs)
            result.events += 1
            result.blobs += len(redacted.blobs)
        if holdings.subject.phone is not None:
            _forget_calls(self.engine, holdings.subject.phone)
        return result


def _complaints_naming(connection: Connection, subject: Subject) -> list[Any]:
    """Complaints whose stored JSON contains the phone or the e-mail (checked by the caller)."""
    needles = []
    if subject.phone is not None:
        needles.append(ComplaintRow.message.contains(subject.phone))
    if subject.email is not None:
        needles.append(func.lower(ComplaintRow.message).contains(subject.email))
    return list(
        connection.execute(
            select(ComplaintRow).where(or_(*needles)).order_by(ComplaintRow.received_at)
        ).all()
    )


def _events_naming(
    connection: Connection, subject: Subject, erased: set[str]
) -> list[dict[str, Any]]:
    """Intake events whose payload names the phone or the e-mail, content not yet removed."""
    needle = (
        EventRow.payload.contains(subject.phone)
        if subject.phone is not None
        else func.lower(EventRow.payload).contains(subject.email or "")
    )
    rows = connection.execute(
        select(EventRow.id, EventRow.evidence_id, EventRow.payload)
        .where(needle, EventRow.kind != ROOT_KIND)
        .order_by(EventRow.created_at)
    ).all()
    return [
        {"id": event_id, **json.loads(payload)}
        for event_id, evidence_id, payload in rows
        if evidence_id not in erased
    ]


def _held(connection: Connection, row: Any, message: dict[str, Any], erased: set[str]) -> Held:
    status = connection.scalar(
        select(ComplaintStateRow.status).where(ComplaintStateRow.complaint_id == row.id)
    )
    evidence = connection.execute(
        select(EvidenceRow).where(EvidenceRow.id == row.evidence_id)
    ).one()
    return Held(
        id=row.id,
        reference=row.reference,
        evidence_id=row.evidence_id,
        message=message,
        evidence=_plain(evidence._mapping),
        received_at=row.received_at,
        answer_due_at=row.answer_due_at,
        status=status,
        erased=row.evidence_id in erased,
    )


def _rows(connection: Connection, query: Any) -> list[dict[str, Any]]:
    return [_plain(row._mapping) for row in connection.execute(query)]


def _plain(mapping: Any) -> dict[str, Any]:
    """A row as JSON-ready values (datetimes as ISO 8601)."""
    return {
        key: value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
        for key, value in mapping.items()
        if not isinstance(value, bytes)
    }


def _forget_calls(engine: Engine, phone: str) -> None:
    """Calls from the number that made no complaint (missed calls) lose the number too."""
    with committing(engine) as connection:
        connection.execute(
            update(CallRow)
            .where(CallRow.caller == phone)
            .values(caller=None, transcript=None, recording_url=None, end_request=None)
        )
        # Calls to return keep their dates and reason (the register counts them).
        connection.execute(
            update(CallBackRow).where(CallBackRow.caller == phone).values(caller=None, outcome=None)
        )
