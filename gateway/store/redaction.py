"""Removing a complaint's personal content while keeping its regulatory record.

Used by the retention purge (``gateway.store.retention``) and by erasure
requests (``gateway.store.personal_data``). What goes: the raw input's blob,
the attachments' blobs, the customer's name, e-mail, phone and address,
subject, body, transaction reference, the words the product rules matched,
attachment names and OCR text, the media URLs, the channel details; and in
the rows around it (``gateway.store.redaction_rows``): a call's caller,
transcript, recording URL and the transcript request's blob, a letter's scan
file names, OCR result and thumbnail, the media rows' URLs and names, the
status reports' notes, the acknowledgement's and notices' recipients and
letters' PDFs, the customer-key contact rows. What stays: id, reference,
channel, origin, language, ``product`` (the register already reported per
product), dates and deadlines, the follow-up link, every sha256 and size,
the channel ids, the counts.

Each blob removed appends a ``removed`` entry to the evidence log
(``gateway.store.chain.append_removals``) in the transaction that redacts
the rows; the files are unlinked after the commit (``unlink_removed``), so
a crash in between leaves a blob the log already calls removed, which the
next purge deletes (``leftover_blobs``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, or_, select, update

from gateway.store.blobs import SCHEME, BlobStore
from gateway.store.captures import CAPTURED
from gateway.store.chain import REMOVED, Removal, append_removals
from gateway.store.redaction_rows import (
    Taken,
    forget_contacts,
    redact_acknowledgement,
    redact_call,
    redact_letter,
    redact_media,
    redact_status_notes,
)
from gateway.store.tables import (
    ComplaintRow,
    EventRow,
    EvidenceLogRow,
    EvidenceRow,
    IntakeRow,
    OutboxRow,
    QuarantineRow,
    TriageRow,
)
from normalizer.contract import Attachment, ComplaintMessage, Customer

# What is kept of ``details``: facts about the channel, not the person.
_KEPT_DETAILS = frozenset({"authentication"})


@dataclass
class Redacted:
    """What one redaction did: the blobs recorded as removed (to unlink after commit)."""

    reference: str
    blobs: list[str] = field(default_factory=list)
    bytes: int = 0
    # The customer-key contact points the complaint used (``forget_points`` on erasure).
    contact_keys: set[str] = field(default_factory=set)


def redact_message(message: ComplaintMessage) -> ComplaintMessage:
    """The message without its personal content; hashes, sizes, dates and ids kept."""
    customer = Customer(
        preferred_language=message.customer.preferred_language,
        preferred_contact=message.customer.preferred_contact,
    )
    attachments = [
        item.model_copy(update={"name": None, "ocr_text": None}) for item in message.attachments
    ]
    evidence = message.evidence.model_copy(update={"recording_url": None, "missing_media": []})
    details = {key: value for key, value in message.details.items() if key in _KEPT_DETAILS}
    # ``product`` stays: the register reported the month per product, and it names nobody.
    detection = message.product_detection
    if detection is not None:
        detection = detection.model_copy(update={"matched": []})
    triage = message.triage
    if triage is not None:
        triage = triage.model_copy(update={"reasons": []})  # may quote the text's words
    return message.model_copy(
        update={
            "customer": customer,
            "subject": None,
            "body": "",
            "product_detection": detection,
            "transaction_reference": None,
            "attachments": attachments,
            "evidence": evidence,
            "details": details,
            "triage": triage,
        }
    )


def content_removed(connection: Connection) -> set[str]:
    """Evidence ids whose raw input a removal entry names (their content is gone)."""
    return set(
        connection.scalars(
            select(EvidenceLogRow.evidence_id).where(
                EvidenceLogRow.kind == REMOVED,
                EvidenceLogRow.removes.is_not(None),
                EvidenceLogRow.evidence_id.is_not(None),
            )
        )
    )


def removed_pairs(connection: Connection) -> set[tuple[str | None, str]]:
    """(evidence id, sha256) of every removal entry."""
    rows = connection.execute(
        select(EvidenceLogRow.evidence_id, EvidenceLogRow.sha256).where(
            EvidenceLogRow.kind == REMOVED
        )
    )
    return {(evidence_id, sha256) for evidence_id, sha256 in rows}


def redact_complaint(connection: Connection, complaint_id: str, reason: str) -> Redacted:
    """Remove one complaint's content and blobs, recording each blob in the evidence log."""
    row = connection.execute(select(ComplaintRow).where(ComplaintRow.id == complaint_id)).one()
    evidence = connection.execute(
        select(EvidenceRow).where(EvidenceRow.id == row.evidence_id)
    ).one()
    message = ComplaintMessage.model_validate_json(row.message)
    redacted = redact_message(message)
    data = json.loads(redacted.model_dump_json())
    connection.execute(
        update(ComplaintRow).where(ComplaintRow.id == complaint_id).values(message=json.dumps(data))
    )
    _redact_outbox(connection, complaint_id, data)
    around: Taken = [
        *redact_call(connection, message.evidence.call_sid),
        *redact_letter(connection, complaint_id),
        *redact_media(connection, row.dedup_key),
        *redact_status_notes(connection, complaint_id),
        *redact_acknowledgement(connection, complaint_id),
    ]
    contact_keys = forget_contacts(connection, complaint_id)
    done = _removed_of(connection, evidence.id)
    captured = connection.scalar(
        select(EvidenceLogRow.sequence).where(
            EvidenceLogRow.evidence_id == evidence.id, EvidenceLogRow.kind != REMOVED
        )
    )
    removals = [
        Removal(
            evidence.sha256,
            evidence.channel,
            evidence.received_at,
            reason,
            evidence.id,
            None if captured is None else int(captured),
        )
    ]
    sizes = {evidence.sha256: evidence.size}
    for item in message.attachments:
        if item.sha256 not in done:
            removals.append(attachment_removal(evidence, item.sha256, reason))
            sizes[item.sha256] = item.size
    for digest, role in dict(around).items():
        if digest not in done:
            removals.append(attachment_removal(evidence, digest, reason, role))
    append_removals(connection, removals)
    result = Redacted(message.reference, contact_keys=contact_keys)
    for removal in removals:
        result.blobs.append(removal.sha256)
        result.bytes += sizes.get(removal.sha256, 0)
    return result


def _removed_of(connection: Connection, evidence_id: str) -> set[str]:
    """The blobs already recorded as removed for this evidence (an attachment purged first)."""
    return set(
        connection.scalars(
            select(EvidenceLogRow.sha256).where(
                EvidenceLogRow.kind == REMOVED, EvidenceLogRow.evidence_id == evidence_id
            )
        )
    )


def redact_event(connection: Connection, event_id: str, reason: str) -> Redacted:
    """An intake event (missed call, auto-reply, acknowledgement) loses its details and its
    raw input; kind, channel, dates and the evidence's hash stay."""
    row = connection.execute(select(EventRow).where(EventRow.id == event_id)).one()
    evidence = connection.execute(
        select(EvidenceRow).where(EvidenceRow.id == row.evidence_id)
    ).one()
    payload = json.loads(row.payload)
    payload["details"] = {}
    if isinstance(payload.get("evidence"), dict):
        payload["evidence"]["recording_url"] = None
        payload["evidence"]["missing_media"] = []
    if isinstance(payload.get("triage"), dict):
        payload["triage"]["reasons"] = []
    connection.execute(
        update(EventRow).where(EventRow.id == event_id).values(payload=json.dumps(payload))
    )
    attachments = _redact_triage(connection, event_id)
    for outbox_id, body in connection.execute(
        select(OutboxRow.id, OutboxRow.payload).where(
            OutboxRow.event_id == event_id, OutboxRow.complaint_id.is_(None)
        )
    ).all():
        envelope = json.loads(body)
        if isinstance(envelope.get("data"), dict):
            envelope["data"] = payload
        connection.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(payload=json.dumps(envelope, ensure_ascii=False).encode())
        )
    captured = connection.scalar(
        select(EvidenceLogRow.sequence).where(
            EvidenceLogRow.evidence_id == evidence.id, EvidenceLogRow.kind != REMOVED
        )
    )
    done = _removed_of(connection, evidence.id)
    removals = [
        Removal(
            evidence.sha256,
            evidence.channel,
            evidence.received_at,
            reason,
            evidence.id,
            None if captured is None else int(captured),
            {"event": row.kind},
        ),
        *(
            attachment_removal(evidence, item.sha256, reason)
            for item in attachments
            if item.sha256 not in done
        ),
    ]
    append_removals(connection, removals)
    return Redacted(
        f"event {row.kind}",
        [removal.sha256 for removal in removals],
        int(evidence.size) + sum(item.size for item in attachments),
    )


def _redact_triage(connection: Connection, event_id: str) -> list[Attachment]:
    """A non-complaint's triage row keeps the complaint it would be: that loses its content
    as a complaint's would; its attachments are given back for removal."""
    stored = connection.scalar(select(TriageRow.message).where(TriageRow.id == event_id))
    if stored is None:
        return []
    message = ComplaintMessage.model_validate_json(stored)
    connection.execute(
        update(TriageRow)
        .where(TriageRow.id == event_id)
        .values(message=redact_message(message).model_dump_json())
    )
    return list(message.attachments)


def attachment_removal(
    evidence: Any, sha256: str, reason: str, role: str = "attachment"
) -> Removal:
    """The removal entry of a blob that belongs to a complaint but is not its raw input."""
    return Removal(
        sha256,
        evidence.channel,
        evidence.received_at,
        reason,
        evidence.id,
        None,
        {"role": role},
    )


def _redact_outbox(connection: Connection, complaint_id: str, data: dict[str, Any]) -> None:
    """Published events keep their envelope; a complaint in ``data`` becomes the redacted one."""
    rows = connection.execute(
        select(OutboxRow.id, OutboxRow.payload).where(OutboxRow.complaint_id == complaint_id)
    ).all()
    for outbox_id, payload in rows:
        try:
            event = json.loads(payload)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("data"), dict):
            if "customer" in event["data"]:
                event["data"] = data
            connection.execute(
                update(OutboxRow)
                .where(OutboxRow.id == outbox_id)
                .values(payload=json.dumps(event, ensure_ascii=False).encode())
            )


def still_needed(
    connection: Connection,
    sha256: str,
    content: Collection[str],
    pairs: Collection[tuple[str | None, str]],
) -> bool:
    """Whether kept content holds this blob: an evidence row, a complaint's attachment, a
    quarantined input not purged, a capture not normalized yet (blobs are shared by
    content: the same file sent twice)."""
    for evidence_id in connection.scalars(
        select(EvidenceRow.id).where(EvidenceRow.sha256 == sha256)
    ):
        if evidence_id not in content and (evidence_id, sha256) not in pairs:
            return True
    for evidence_id in connection.scalars(
        select(ComplaintRow.evidence_id).where(ComplaintRow.message.contains(sha256))
    ):
        if evidence_id not in content and (evidence_id, sha256) not in pairs:
            return True
    kept = connection.scalar(
        select(QuarantineRow.id)
        .where(QuarantineRow.stored_at == SCHEME + sha256)
        .where(or_(QuarantineRow.kept_bytes.is_(None), QuarantineRow.kept_bytes > 0))
        .limit(1)
    )
    if kept is not None:
        return True
    waiting = connection.scalar(
        select(IntakeRow.id)
        .where(IntakeRow.stored_at == SCHEME + sha256, IntakeRow.state == CAPTURED)
        .limit(1)
    )
    return waiting is not None


def unlink_removed(connection: Connection, blobs: BlobStore, digests: Iterable[str]) -> int:
    """Delete the files of blobs the log records as removed, unless kept content needs them."""
    content, pairs = content_removed(connection), removed_pairs(connection)
    deleted = 0
    for digest in dict.fromkeys(digests):
        if not still_needed(connection, digest, content, pairs) and blobs.remove(digest):
            deleted += 1
    return deleted


def leftover_blobs(connection: Connection, blobs: BlobStore) -> list[str]:
    """Blobs a removal entry names that are still on disk (a purge interrupted after commit)."""
    names = connection.scalars(
        select(EvidenceLogRow.sha256).where(EvidenceLogRow.kind == REMOVED).distinct()
    )
    return [digest for digest in names if blobs.exists(digest)]
