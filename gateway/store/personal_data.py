"""A customer's access and erasure requests (law 09-08), by phone number or e-mail address.

``intake personal-data export|erase`` -> **PersonalData.find** (the
complaints whose customer has this phone, E.164, or this e-mail, lower-case;
the calls from that number and those to return to it; the acknowledgements
sent to it; the intake events naming it; the quarantined inputs that name
it in their bytes or source ids) -> **export** (everything held, as
documents and blob files) or **erase** (the content removed as the
retention purge removes it, ``gateway.store.redaction``, with the reason
``erasure`` in the evidence log; also the quarantined inputs, the calls from
the number that made no complaint, the calls to return to it, and the
customer-key contact points no kept complaint uses).

An erasure keeps the regulatory record (reference, channel, dates,
deadlines, hashes, sizes, counts): Bank Al-Maghrib's register and the
evidence log's chain need it, and it names nobody once the content is gone.
"""

from __future__ import annotations

import email
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from typing import Any
from urllib.parse import unquote_plus

from sqlalchemy import Connection, Engine, func, or_, select

from gateway.store.blobs import SCHEME, BlobChanged, BlobMissing, BlobStore
from gateway.store.db import committing, read_connection
from gateway.store.evidence import ROOT_KIND
from gateway.store.redaction import (
    content_removed,
    redact_complaint,
    redact_event,
    unlink_removed,
)
from gateway.store.redaction_rows import (
    digest_of,
    forget_caller,
    forget_points,
    redact_quarantined,
)
from gateway.store.tables import (
    AcknowledgementRow,
    CallBackRow,
    CallRow,
    ComplaintRow,
    ComplaintStateRow,
    EventRow,
    EvidenceRow,
    QuarantineRow,
    TriageRow,
)
from normalizer.contact import phones_in
from normalizer.contract import Customer
from normalizer.customer import contact_keys

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

    def named_in(self, text: str) -> bool:
        """Whether free text (a raw input, source ids) names the phone, in any of its forms,
        or the e-mail."""
        if self.phone is not None:
            return self.phone in phones_in(text)
        return self.email is not None and self.email in text.lower()


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
    # Quarantined inputs naming them (refused or waiting to be reprocessed), content kept.
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    # Calls from the number staff were to return, and what came of it (``call_backs``).
    call_backs: list[dict[str, Any]] = field(default_factory=list)

    def any(self) -> bool:
        return bool(
            self.complaints or self.calls or self.events or self.quarantined or self.call_backs
        )

    def blobs(self) -> dict[str, str]:
        """sha256 -> what it is (raw input, attachment, acknowledgement) of every blob held."""
        found: dict[str, str] = {}
        for held in self.complaints:
            found.setdefault(held.evidence["sha256"], f"{held.reference} raw input")
            for item in held.message.get("attachments") or []:
                found.setdefault(item["sha256"], f"{held.reference} attachment")
        for event in self.events:
            found.setdefault(event["evidence"]["sha256"], f"event {event['kind']} raw input")
            for item in (event.get("would_be_complaint") or {}).get("attachments") or []:
                found.setdefault(item["sha256"], f"event {event['kind']} attachment")
        for ack in self.acknowledgements:
            if ack.get("document"):
                found.setdefault(ack["document"].removeprefix(SCHEME), "acknowledgement")
        for item in self.quarantined:
            found.setdefault(digest_of(item["stored_at"]), f"quarantined {item['channel']} input")
        return found


@dataclass
class Erased:
    references: list[str] = field(default_factory=list)
    events: int = 0
    quarantined: int = 0
    blobs: int = 0
    files_deleted: int = 0


class PersonalData:
    def __init__(self, engine: Engine, blobs: BlobStore, customer_secret: bytes = b"") -> None:
        self.engine = engine
        self.blobs = blobs
        self.customer_secret = customer_secret

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
            holdings.quarantined = self._quarantined_naming(connection, subject)
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
        """Remove the content of each complaint, event and quarantined input held (one
        transaction each), the calls from the number, the contact points left unused; then
        unlink the files, once."""
        result = Erased()
        digests: list[str] = []
        keys = set(self._subject_keys(holdings.subject))
        for held in holdings.complaints:
            if held.erased:
                continue
            with committing(self.engine) as connection:
                redacted = redact_complaint(connection, held.id, ERASURE)
            result.references.append(redacted.reference)
            digests += redacted.blobs
            keys |= redacted.contact_keys
        for event in holdings.events:
            with committing(self.engine) as connection:
                redacted = redact_event(connection, event["id"], ERASURE)
            result.events += 1
            digests += redacted.blobs
        for item in holdings.quarantined:
            with committing(self.engine) as connection:
                removed, _size = redact_quarantined(connection, item["id"], ERASURE, resolve=True)
            result.quarantined += 1
            digests += removed
        with committing(self.engine) as connection:
            if holdings.subject.phone is not None:
                digests += forget_caller(connection, holdings.subject.phone, ERASURE)
            forget_points(connection, keys)
        result.blobs = len(digests)
        with committing(self.engine) as connection:
            result.files_deleted = unlink_removed(connection, self.blobs, digests)
        return result

    def _subject_keys(self, subject: Subject) -> list[str]:
        """The customer-key contact keys of the subject's phone or e-mail (with the secret)."""
        if not self.customer_secret:
            return []
        customer = Customer(phone=subject.phone, email=subject.email)
        return contact_keys(customer, self.customer_secret)

    def _quarantined_naming(self, connection: Connection, subject: Subject) -> list[dict[str, Any]]:
        """Quarantined inputs whose bytes (read as text, form-decoded, e-mail parts decoded)
        or source ids name the subject; those already emptied are left out. Every kept
        input is read: the quarantine is small, and its inputs were never parsed."""
        found = []
        for row in connection.execute(select(QuarantineRow).order_by(QuarantineRow.created_at)):
            if row.kept_bytes == 0 and not row.source_ids:
                continue  # nothing left of it (purged or erased)
            text = f"{row.reason}\n{json.dumps(row.source_ids or {}, ensure_ascii=False)}"
            if row.kept_bytes is None or row.kept_bytes > 0:
                text += "\n" + self._text_of(row.stored_at, row.content_type)
            if subject.named_in(text):
                found.append(_plain(row._mapping))
        return found

    def _text_of(self, location: str, content_type: str) -> str:
        try:
            data = self.blobs.get(location)
        except (BlobMissing, BlobChanged):
            return ""
        return searchable_text(data, content_type)


def searchable_text(data: bytes, content_type: str) -> str:
    """A raw input as text to search for a phone or an e-mail: as decoded, form-decoded
    (``%2B212...``), and for a mail its headers and decoded text parts."""
    text = data.decode("utf-8", "replace")
    parts = [text, unquote_plus(text)]
    if content_type.lower().startswith("message/"):
        parts += _mail_text(data)
    return "\n".join(parts)


def _mail_text(data: bytes) -> list[str]:
    """A mail's decoded headers and text parts; what the e-mail package cannot read is
    left to the raw text (the quarantine holds the very mails the parser refused)."""
    parts: list[str] = []
    try:
        message = email.message_from_bytes(data, policy=policy.default)
        parts += [f"{name}: {value}" for name, value in message.items()]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts.append(str(part.get_content()))
    except Exception:  # any failure of a hostile mail: keep what was read before it
        return parts
    return parts


def _complaints_naming(connection: Connection, subject: Subject) -> list[Any]:
    """Complaints whose stored JSON contains the phone or the e-mail (checked by the caller)."""
    return list(
        connection.execute(
            select(ComplaintRow)
            .where(_names(ComplaintRow.message, subject))
            .order_by(ComplaintRow.received_at)
        ).all()
    )


def _events_naming(
    connection: Connection, subject: Subject, erased: set[str]
) -> list[dict[str, Any]]:
    """Intake events whose payload names the phone or the e-mail, or whose triage row (a
    non-complaint: the complaint it would be) does; content not yet removed."""
    rows = connection.execute(
        select(EventRow.id, EventRow.evidence_id, EventRow.payload, TriageRow.message)
        .outerjoin(TriageRow, TriageRow.id == EventRow.id)
        .where(
            or_(_names(EventRow.payload, subject), _names(TriageRow.message, subject)),
            EventRow.kind != ROOT_KIND,
        )
        .order_by(EventRow.created_at)
    ).all()
    return [
        {
            "id": event_id,
            **json.loads(payload),
            **({"would_be_complaint": json.loads(triaged)} if triaged else {}),
        }
        for event_id, evidence_id, payload, triaged in rows
        if evidence_id not in erased
    ]


def _names(column: Any, subject: Subject) -> Any:
    """SQL: the text column holds the phone, or the e-mail (case aside)."""
    if subject.phone is not None:
        return column.contains(subject.phone)
    return func.lower(column).contains(subject.email or "")


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
