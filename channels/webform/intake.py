"""One web form post -> its ``RawInput``: shared by the form's edge, its runner step and its replay.

``routes`` (a post that passed the guards and the checks), ``staged`` (the
runner reading a captured post again) and ``replay`` (a quarantined post
checked again) build the dedup key (the form token's nonce and the content)
here, so it is written once; ``read_post`` is the one reading of a stored
multipart body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from channels.webform.form import Submission, Upload, content_hash
from channels.webform.guard import FIELD
from config.settings import Settings
from normalizer.contract import Channel
from normalizer.draft import RawInput
from normalizer.ocr import ScanLimits

URLENCODED = "application/x-www-form-urlencoded"


def form_limits(settings: Settings) -> ScanLimits:
    """What an attachment of the form may be: the letters' checks, with the form's size."""
    return ScanLimits(
        max_bytes=min(settings.webform_max_attachment_bytes, settings.letter_max_bytes),
        max_pages=settings.letter_max_pages,
        max_pixels=settings.letter_max_pixels,
        timeout=settings.ocr_timeout,
        memory_mb=settings.ocr_memory_mb,
    )


def form_input(
    body: bytes,
    content_type: str,
    nonce: str,
    sub: Submission,
    *,
    received_at: datetime,
    source_ids: dict[str, Any],
) -> RawInput:
    """The evidence of one post; one post of one form token is one complaint."""
    return RawInput(
        channel=Channel.WEBFORM,
        data=body,
        content_type=content_type,
        received_at=received_at,
        dedup_key=f"webform:{nonce}:{content_hash(sub)}",
        source_ids=source_ids,
    )


@dataclass(frozen=True)
class StoredPost:
    """A stored multipart body read again: what was typed and attached, and its form token."""

    sub: Submission
    token: str

    @property
    def nonce(self) -> str | None:
        """The token's nonce (``issued.nonce.mac``), None if the token is not one."""
        parts = self.token.split(".")
        return parts[1] if len(parts) == 3 else None


def read_post(body: bytes, content_type: str) -> StoredPost:
    """A stored form body parsed again, with the standard library.

    ``multipart/form-data`` (what the page's form sends) or
    ``application/x-www-form-urlencoded`` (a client without files, which the
    edge accepts too). The edge parsed it as it streamed in (``body``); a
    runner and a replay read it back from the store, whole, with no request
    around it.
    """
    if content_type.split(";", maxsplit=1)[0].strip().lower() == URLENCODED:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        values = {name: value for name, value in pairs if name != "attachments"}
        return StoredPost(Submission.from_form(values, []), values.get(FIELD, ""))
    values = {}
    uploads: list[Upload] = []
    for part in _form_fields(content_type, body):
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if filename:
            uploads.append(Upload(name=filename, data=data, declared_type=part.get_content_type()))
        elif isinstance(name, str) and name != "attachments":
            values[name] = data.decode("utf-8", "replace")
    return StoredPost(Submission.from_form(values, uploads), values.get(FIELD, ""))


def _form_fields(content_type: str, body: bytes) -> list[Message]:
    """The parts of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    document = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not document.is_multipart():
        return []
    return [part for part in document.iter_parts() if isinstance(part, Message)]
