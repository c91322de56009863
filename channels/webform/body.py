"""Reading a form POST: the raw body under the form's own cap, then its fields and files.

browser POST -> **read_limited** (the evidence, at most ``max_body_bytes``)
-> **parse_form** -> ``Submission`` -> guards and validation (routes).

The form enforces its size cap itself, while the body streams in, instead of
leaving it to the gateway-wide ``BodySizeLimit``: an oversized post must get
the form page back in the customer's language with what they typed, not the
API's JSON error. The fields come before the files in the page, so the part
read of a body that is too large still holds what was typed.
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


async def read_limited(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body and whether it is whole; reading stops once it is over ``limit`` bytes.

    A body that is too large comes back cut at ``limit`` (never more is held
    in memory than an accepted post), for the page to give back the fields.
    The rest is not read: the server discards it after the answer.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False
    return b"".join(chunks), True


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
    return MAX_FILES * per_file + 4 * MAX_TEXT + 64 * 1024
