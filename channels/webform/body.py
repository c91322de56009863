"""Reading a form POST: the raw body under the form's own cap, then its fields and files.

browser POST -> **read_limited** (the evidence, at most ``max_body_bytes``)
-> **parse_form** -> ``Submission`` -> guards and validation (routes).

The form enforces its size cap itself, while the body streams in, instead of
leaving it to the gateway-wide ``BodySizeLimit``: an oversized post must get
the form page back in the customer's language with what they typed, not the
API's JSON error. The fields come before the files in the page, so the first
``FIELDS_BYTES`` of a body that is too large still hold what was typed; only
that head is kept and parsed. A post that declares a ``Content-Length`` over
the cap is refused after its head, a streamed one as soon as it passes the
cap: this runs before the CSRF check and the flood guard, so an anonymous
oversized post must cost little.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message

from channels.webform.form import MAX_FILES, MAX_TEXT, Upload
from config.settings import Settings

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
# What a post holds before its files: the text fields at their largest (up to
# 4 bytes a character in UTF-8) and the multipart framing around them.
FIELDS_BYTES = 4 * MAX_TEXT + 64 * 1024


async def read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body and whether it is whole; a body over ``limit`` bytes comes back as its head.

    The head (``FIELDS_BYTES`` at most) is all the size error page needs to
    give back what was typed. A declared ``Content-Length`` over the cap is
    believed: only the head is read. A streamed body is read until it passes
    the cap, never further. The rest is not read: the server discards it
    after the answer.
    """
    declared_over = _declared_size(request) > limit
    stop_after = FIELDS_BYTES if declared_over else limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > stop_after:
            break
    if declared_over or size > limit:
        return _head(chunks), False
    return b"".join(chunks), True


def _declared_size(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


def _head(chunks: list[bytes]) -> bytes:
    """The first ``FIELDS_BYTES`` of the chunks, without joining the rest."""
    head = bytearray()
    for chunk in chunks:
        head += chunk[: FIELDS_BYTES - len(head)]
        if len(head) >= FIELDS_BYTES:
            break
    return bytes(head)


async def parse_form(request: Request, body: bytes) -> FormData:
    """Parse the body already read (and kept as evidence) as a form, with part limits.

    A body cut short parses too: the parts it holds whole are returned, the
    one it cuts (a file, normally) is left out.
    """
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    again = Request(request.scope, replay)
    # Room for a few files too many, so the customer gets the friendly
    # "five at most" error rather than a refusal of the whole request.
    return await again.form(max_files=MAX_FILES * 2, max_fields=40, max_part_size=4 * MAX_TEXT)


async def uploads_of(form: FormData) -> list[Upload]:
    found: list[Upload] = []
    for item in form.getlist("attachments"):
        if not isinstance(item, UploadFile) or not item.filename:
            continue  # the empty part browsers send when no file was chosen
        data = await item.read()
        name = _UNSAFE_NAME.sub("", Path(item.filename.replace("\\", "/")).name)[:200]
        found.append(Upload(name=name or "attachment", data=data, declared_type=item.content_type))
    return found


def max_body_bytes(settings: Settings) -> int:
    """The largest form POST: five files at the cap, plus the text fields."""
    per_file = min(settings.webform_max_attachment_bytes, settings.letter_max_bytes)
    return MAX_FILES * per_file + FIELDS_BYTES
