"""A quarantined web form post, checked again and recorded, dated from its first receipt.

``gateway.ops.quarantine.replay`` -> **here** -> the form's own checks
(``form.validate`` with ``intake.form_limits``) -> ``intake.form_input`` ->
``channels.handoff``. The honeypot is not checked again: the operator who
replays a post has judged it human.
"""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser

from channels.handoff import hand_off
from channels.webform.form import Submission, Upload, build_draft, validate
from channels.webform.guard import FIELD
from channels.webform.intake import form_input, form_limits
from gateway.lib.services import Services
from gateway.store.quarantine import QuarantineItem, ReplayResult


def _form_fields(content_type: str, body: bytes) -> list[Message]:
    """The parts of a multipart/form-data body, parsed with the standard library."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    document = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not document.is_multipart():
        return []
    return [part for part in document.iter_parts() if isinstance(part, Message)]


def replay_webform(services: Services, item: QuarantineItem) -> ReplayResult:
    """A web form post checked again (not the honeypot: the operator judged it human).

    A refused post kept as its head only never gets here: ``gateway.ops``
    refuses to reprocess any such item, whatever its channel.
    """
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
    checked = validate(sub, form_limits(services.settings))
    if checked.errors:
        codes = ", ".join(f"{error.field}:{error.code}" for error in checked.errors)
        return ReplayResult(False, f"invalid_field: {codes}")
    token = values.get(FIELD, "").split(".")
    nonce = token[1] if len(token) == 3 else f"quarantine-{item.id}"
    source_ids = {**item.source_ids, "replayed_from": item.id}
    raw = form_input(
        body, item.content_type, nonce, sub, received_at=item.created_at, source_ids=source_ids
    )
    result = hand_off(services, raw, build_draft(sub, checked, item.created_at))
    return ReplayResult(
        True,
        "complaint recorded" if result.created else "already recorded",
        complaint_id=result.message.id,
        reference=result.message.reference,
    )
