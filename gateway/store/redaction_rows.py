"""The rows around a complaint that hold its personal content, and how each loses it.

``gateway.store.redaction.redact_complaint`` (purge and erasure) -> **here**:
the call (caller, transcript and the blob of the request that brought it),
the letter (scan file names, OCR result, the thumbnail's blob), the media
rows (MMS and WhatsApp media: URL, name), the status reports' free-text
notes, the acknowledgement's and notices' recipients (and their letters'
PDFs), the customer-key contact rows. ``gateway.store.personal_data`` also
removes a quarantined input (``redact_quarantined``) and the contact points
nobody's complaint uses any more (``forget_points``).

Every function returns the blobs it took away from the row, as
``(sha256, role)``; the caller records each in the evidence log and
unlinks the files after the commit. Hashes, sizes, dates, states and counts
stay.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, select, update

from gateway.store.blobs import SCHEME
from gateway.store.chain import Removal, append_removals
from gateway.store.media import FAILED, PENDING
from gateway.store.tables import (
    AcknowledgementRow,
    CallBackRow,
    CallRow,
    ComplaintContactRow,
    ComplaintStatusRow,
    CustomerPointRow,
    IntakeRow,
    LetterRow,
    MediaRow,
    NoticeRow,
    QuarantineRow,
)
from normalizer.contract import Channel

# What a row gave up: (sha256 of a blob, what it was).
Taken = list[tuple[str, str]]


def digest_of(location: str) -> str:
    """The sha256 of a blob location (``blob:sha256:<hex>``, or the bare hex)."""
    return location.removeprefix(SCHEME).split(":")[-1]


def redact_call(connection: Connection, call_sid: str | None) -> Taken:
    """The caller, transcript, recording URL and status request go; the blob of the request
    that brought the transcript is given back for removal (``transcript_sha256`` stays)."""
    if call_sid is None:
        return []
    return _forget_calls(connection, CallRow.call_sid == call_sid)


def forget_caller(connection: Connection, phone: str, reason: str) -> list[str]:
    """Every call from ``phone`` (also those that made no complaint) loses its content; the
    transcript requests' blobs are recorded as removed (the call's own entry: no evidence
    row) and returned for unlinking."""
    calls = connection.execute(
        select(CallRow.call_sid, CallRow.started_at, CallRow.transcript_evidence).where(
            CallRow.caller == phone, CallRow.transcript_evidence.is_not(None)
        )
    ).all()
    _forget_calls(connection, CallRow.caller == phone)
    # Calls to return keep their dates and reason (the register counts them).
    connection.execute(
        update(CallBackRow).where(CallBackRow.caller == phone).values(caller=None, outcome=None)
    )
    removals = [
        Removal(
            digest_of(location),
            Channel.PHONE.value,
            started_at,
            reason,
            None,
            None,
            {"role": "transcript", "call_sid": call_sid},
        )
        for call_sid, started_at, location in calls
        if location
    ]
    append_removals(connection, removals)
    return [removal.sha256 for removal in removals]


def _forget_calls(connection: Connection, which: Any) -> Taken:
    taken = [
        (digest_of(location), "transcript")
        for location in connection.scalars(
            select(CallRow.transcript_evidence).where(
                which, CallRow.transcript_evidence.is_not(None)
            )
        )
        if location
    ]
    connection.execute(
        update(CallRow)
        .where(which)
        .values(
            caller=None,
            transcript=None,
            recording_url=None,
            end_request=None,
            transcript_evidence=None,
        )
    )
    return taken


def redact_letter(connection: Connection, complaint_id: str) -> Taken:
    """Scan file names, the OCR result and the thumbnail go; the scans' hashes stay."""
    row = connection.execute(
        select(LetterRow.id, LetterRow.files, LetterRow.thumbnail).where(
            LetterRow.complaint_id == complaint_id
        )
    ).first()
    if row is None:
        return []
    files = [{**item, "name": None} if isinstance(item, dict) else item for item in row.files or []]
    connection.execute(
        update(LetterRow)
        .where(LetterRow.id == row.id)
        .values(files=files, result=None, thumbnail=None)
    )
    return [(digest_of(row.thumbnail), "thumbnail")] if row.thumbnail else []


def redact_media(connection: Connection, complaint_key: str) -> Taken:
    """MMS and WhatsApp media (and recordings) of a complaint: URL, name, error text go;
    the stored attachment keeps its type, size and sha256 (its blob is the complaint's
    attachment, removed with it). A download still pending is given up."""
    rows = connection.execute(
        select(MediaRow.id, MediaRow.attachment).where(MediaRow.complaint_key == complaint_key)
    ).all()
    for media_id, attachment in rows:
        connection.execute(
            update(MediaRow)
            .where(MediaRow.id == media_id)
            .values(url="", name=None, last_error=None, attachment=plain_attachment(attachment))
        )
    connection.execute(
        update(MediaRow)
        .where(MediaRow.complaint_key == complaint_key, MediaRow.state == PENDING)
        .values(state=FAILED, last_error="content removed")
    )
    return []


def redact_status_notes(connection: Connection, complaint_id: str) -> Taken:
    """Status reports keep status, dates, deadline and reason code; the free-text note goes."""
    connection.execute(
        update(ComplaintStatusRow)
        .where(ComplaintStatusRow.complaint_id == complaint_id)
        .values(note=None)
    )
    return []


def redact_acknowledgement(connection: Connection, complaint_id: str) -> Taken:
    """The recipients go; the letters' PDFs (name and address) are given for removal."""
    document = connection.scalar(
        select(AcknowledgementRow.document).where(AcknowledgementRow.complaint_id == complaint_id)
    )
    connection.execute(
        update(AcknowledgementRow)
        .where(AcknowledgementRow.complaint_id == complaint_id)
        .values(recipient=None, detail=None)
    )
    documents = [document] if document else []
    # Notices of a longer delay: the same (recipient, the letter's PDF).
    documents += [
        found
        for found in connection.scalars(
            select(NoticeRow.document).where(NoticeRow.complaint_id == complaint_id)
        )
        if found
    ]
    connection.execute(
        update(NoticeRow)
        .where(NoticeRow.complaint_id == complaint_id)
        .values(recipient=None, detail=None)
    )
    return [(digest_of(found), "acknowledgement") for found in documents]


def forget_contacts(connection: Connection, complaint_id: str) -> set[str]:
    """The complaint's customer-key contact rows go; the contact keys they held."""
    keys = set(
        connection.scalars(
            select(ComplaintContactRow.contact_key).where(
                ComplaintContactRow.complaint_id == complaint_id
            )
        )
    )
    connection.execute(
        delete(ComplaintContactRow).where(ComplaintContactRow.complaint_id == complaint_id)
    )
    return keys


def forget_points(connection: Connection, contact_keys: Collection[str]) -> int:
    """Contact points no complaint uses any more are forgotten: a later complaint by that
    phone or e-mail starts a new customer key instead of finding the erased one."""
    if not contact_keys:
        return 0
    used = exists().where(ComplaintContactRow.contact_key == CustomerPointRow.contact_key)
    result = connection.execute(
        delete(CustomerPointRow).where(CustomerPointRow.contact_key.in_(list(contact_keys)), ~used)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def redact_quarantined(
    connection: Connection, item_id: str, reason: str, *, resolve: bool = False
) -> tuple[list[str], int]:
    """A quarantined input keeps its reason code, hashes and size; its blob, source ids and
    reason text go (``kept_bytes`` 0), recorded as a removal. ``resolve``: an erased item
    can no longer be reprocessed, so it leaves the list of items waiting."""
    row = connection.execute(select(QuarantineRow).where(QuarantineRow.id == item_id)).one()
    digest = digest_of(row.stored_at)
    kept = row.size if row.kept_bytes is None else row.kept_bytes
    values: dict[str, Any] = {"kept_bytes": 0, "source_ids": {}, "reason": row.reason_code}
    if resolve and row.resolved_at is None:
        values["resolved_at"] = datetime.now(UTC)
    connection.execute(update(QuarantineRow).where(QuarantineRow.id == item_id).values(**values))
    capture_id = (row.source_ids or {}).get("capture_id")
    if capture_id:  # the capture it came from keeps the same envelope until then
        connection.execute(
            update(IntakeRow).where(IntakeRow.id == str(capture_id)).values(source_ids={})
        )
    append_removals(
        connection,
        [
            Removal(
                digest, row.channel, row.created_at, reason, None, None, {"quarantine_id": row.id}
            )
        ],
    )
    return [digest], int(kept)


def plain_attachment(attachment: Any) -> Any:
    """A stored attachment (the contract's ``Attachment`` as JSON) without name and OCR text."""
    if isinstance(attachment, dict):
        return {**attachment, "name": None, "ocr_text": None}
    return attachment
