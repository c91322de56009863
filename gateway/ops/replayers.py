"""Replay hooks of the channels: a quarantined input's stored bytes, parsed again.

``gateway.ops.quarantine.replay`` -> **the channel's hook** -> the channel's
own parsing -> the normal hand-off (``ingest_mail``, ``hand_off``), so a
replayed input is recorded exactly as if it had been accepted the first
time: same dedup key where the channel has a stable one, the original
receipt time (when it was quarantined) as the start of the legal clock.

The letters and phone channels keep their hooks with their own code
(``channels.letters.replay``, ``channels.twilio.replay``): they rebuild a
whole letter from its manifest, or pick the webhook's handler by its path.

A hook never quarantines again: an input still refused returns
``ReplayResult(ok=False)`` with the reason and stays where it is. Store
failures propagate (the caller answers 503 / exit 75).
"""

from __future__ import annotations

import hashlib
from email import policy
from email.message import Message
from email.parser import BytesParser

from sqlalchemy import select

from channels.intake import hand_off
from gateway.errors import ApiError
from gateway.ops.quarantine import QuarantineItem, ReplayResult
from gateway.services import Services
from gateway.store.apikeys import ApiClient
from gateway.store.db import reading
from gateway.store.models import ApiKeyRow
from normalizer.contract import Channel
from normalizer.draft import RawInput


def replay_email(services: Services, item: QuarantineItem) -> ReplayResult:
    """An e-mail (IMAP, SMTP or import) parsed again with today's parser and limits."""
    from channels.mail import MailArrival, MailOutcome, ingest_mail, parse_arrival
    from normalizer.email import EmailRejected

    arrival = MailArrival(
        raw=services.store.blobs.get(item.stored_at),
        received_at=item.created_at,
        source_ids={**item.source_ids, "replayed_from": item.id},
    )
    try:
        parse_arrival(services.settings, arrival)
    except EmailRejected as exc:
        return ReplayResult(False, f"{exc.code}: {exc.reason}")
    result = ingest_mail(services, arrival)
    if result.outcome is MailOutcome.AUTO_REPLY:
        return ReplayResult(True, "recorded as an auto-reply event")
    return ReplayResult(
        True, "complaint recorded", complaint_id=result.complaint_id, reference=result.reference
    )


def _api_client(services: Services, name: str) -> ApiClient | None:
    with reading(services.store.engine) as session:
        row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.name == name)).first()
        return None if row is None else ApiClient(id=row.id, name=row.name, prefix=row.prefix)


def replay_api(services: Services, item: QuarantineItem) -> ReplayResult:
    """A partner's JSON body validated again, under the same client and Idempotency-Key."""
    from channels.api import build_draft, dedup_key_for, parse_submission

    raw = services.store.blobs.get(item.stored_at)
    client = _api_client(services, str(item.source_ids.get("api_client") or ""))
    if client is None:
        return ReplayResult(False, "the API client of this input no longer exists")
    try:
        draft = build_draft(parse_submission(raw), item.created_at)
    except ApiError as exc:
        return ReplayResult(False, f"{exc.code}: {exc.message}")
    key = item.source_ids.get("idempotency_key")
    raw_input = RawInput(
        channel=draft.channel,
        data=raw,
        content_type="application/json",
        received_at=draft.received_at,
        dedup_key=dedup_key_for(client, raw, key, draft.received_at, services.settings.timezone),
        source_ids={"api_client": client.name, "idempotency_key": key, "replayed_from": item.id},
        request_hash=hashlib.sha256(raw).hexdigest(),
    )
    result = hand_off(services, raw_input, draft)
    return ReplayResult(
        True,
        "complaint recorded" if result.created else "already recorded",
        complaint_id=result.message.id,
        reference=result.message.reference,
    )


def _form_fields(content_type: str, body: bytes) -> list[Message]:
    """The parts of a multipart/form-data body, parsed with the standard library."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    document = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not document.is_multipart():
        return []
    return [part for part in document.iter_parts() if isinstance(part, Message)]


def replay_webform(services: Services, item: QuarantineItem) -> ReplayResult:
    """A web form post checked again (not the honeypot: the operator judged it human)."""
    from channels.webform.form import Submission, Upload, build_draft, content_hash, validate
    from channels.webform.guard import FIELD
    from channels.webform.routes import WebForm

    body = services.store.blobs.get(item.stored_at)
    values: dict[str, str] = {}
    uploads: list[Upload] = []
    for part in _form_fields(item.content_type, body):
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if filename:
            uploads.append(Upload(name=filename, data=data, declared_type=part.get_content_type()))
        elif isinstance(name, str) and name != "attachments":
            values[name] = data.decode("utf-8", "replace")
    sub = Submission.from_form(values, uploads)
    checked = validate(sub, WebForm(services).limits)
    if checked.errors:
        codes = ", ".join(f"{error.field}:{error.code}" for error in checked.errors)
        return ReplayResult(False, f"invalid_field: {codes}")
    token = values.get(FIELD, "").split(".")
    nonce = token[1] if len(token) == 3 else f"quarantine-{item.id}"
    raw = RawInput(
        channel=Channel.WEBFORM,
        data=body,
        content_type=item.content_type,
        received_at=item.created_at,
        dedup_key=f"webform:{nonce}:{content_hash(sub)}",
        source_ids={**item.source_ids, "replayed_from": item.id},
    )
    result = hand_off(services, raw, build_draft(sub, checked, item.created_at))
    return ReplayResult(
        True,
        "complaint recorded" if result.created else "already recorded",
        complaint_id=result.message.id,
        reference=result.message.reference,
    )
