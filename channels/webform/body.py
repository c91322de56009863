"""Reading a form POST in two steps: its head before any guard, the rest to disk after them.

browser POST -> **PostBody.read_head** (at most ``FIELDS_BYTES``) -> form
token (CSRF) and flood guard, from the head alone -> **PostBody.spool_rest**
(to a temporary file, under the form's cap) -> **parse_spooled** ->
``Submission`` -> validation (routes).

An anonymous post costs us its head only: the token is the form's first
field (the page puts its hidden field first, so every browser sends it
first, with or without JavaScript) and the fields come before the files, so
the first ``FIELDS_BYTES`` hold the token and what was typed. Only a post
whose token is valid and whose sender is within the flood guard is read
further, straight to a spooled temporary file (on disk past 1 MiB), with
its size and sha256 counted on the way; the parser reads it back in chunks
and spools the files it finds. The form enforces its size cap itself
instead of leaving it to the gateway-wide ``BodySizeLimit``: an oversized
post gets the form page back in the customer's language with what they
typed (from the head), not the API's JSON error.

A slow body is bounded in time (S1, S18): the head must arrive within
``INTAKE_WEBFORM_BODY_TIMEOUT`` of the request's headers, then each further
chunk within that same time of the one before; past either, ``SlowBody``
(the form answers 408 and closes the connection, freeing its slot).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from collections.abc import Iterator
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
# A spooled body stays in memory up to this, then moves to a temporary file.
SPOOL_MEMORY = 1024 * 1024
PARSE_CHUNK = 64 * 1024


class SlowBody(Exception):
    """The body did not come in time: its head within the timeout, or its next chunk."""


class PostBody:
    """One form POST, read in two steps (see the module's docstring).

    ``timeout``: seconds for the whole head, then for each further chunk.
    """

    def __init__(self, request: Request, limit: int, timeout: float | None = None) -> None:
        self.request = request
        self.limit = limit
        self.timeout = timeout
        self.declared_over = _declared_size(request) > limit
        self._stream = request.stream()
        self.start = b""  # the first chunks: at least FIELDS_BYTES of the body, or all of it
        self.ended = False

    async def read_head(self) -> bytes:
        """Read the body's first ``FIELDS_BYTES`` (and the rest of the chunk that passes them).

        ``SlowBody`` when it takes longer than ``timeout`` in all.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read_head()
        except TimeoutError:
            raise SlowBody("the head of the body did not come in time") from None

    async def _read_head(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in self._stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= FIELDS_BYTES:
                break
        else:
            self.ended = True
        self.start = b"".join(chunks)
        return self.head

    @property
    def head(self) -> bytes:
        return self.start[:FIELDS_BYTES]

    async def spool_rest(self) -> SpooledBody | None:
        """The whole body in a temporary file; ``None`` once it passes the cap (read no further)."""
        spooled = SpooledBody()
        try:
            spooled.write(self.start)
            while not self.ended and spooled.size <= self.limit:
                chunk = await self._next_chunk()
                if chunk is None:
                    break
                spooled.write(chunk)
            if spooled.size > self.limit:
                spooled.close()
                return None
        except BaseException:
            spooled.close()
            raise
        spooled.file.seek(0)
        return spooled

    async def _next_chunk(self) -> bytes | None:
        """The body's next chunk (``None`` at its end), or ``SlowBody`` past ``timeout``."""
        try:
            async with asyncio.timeout(self.timeout):
                return await anext(self._stream)
        except StopAsyncIteration:
            self.ended = True
            return None
        except TimeoutError:
            raise SlowBody("the body stopped coming") from None


class SpooledBody:
    """A body on its way to disk: memory up to ``SPOOL_MEMORY``, a temporary file past it."""

    def __init__(self) -> None:
        self.file: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MEMORY
        )
        self.size = 0
        self._digest = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.size += len(chunk)
        self._digest.update(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def head(self, size: int) -> bytes:
        self.file.seek(0)
        return self.file.read(size)

    def read_all(self) -> bytes:
        """The whole body in memory: the evidence, once the post is admitted and valid."""
        self.file.seek(0)
        return self.file.read()

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(PARSE_CHUNK):
            yield chunk

    def close(self) -> None:
        self.file.close()


def _declared_size(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


async def parse_form(request: Request, body: bytes) -> FormData:
    """Parse a head of the body (or a small whole one) as a form, with part limits.

    A body cut short parses too: the parts it holds whole are returned, the
    one it cuts (a file, normally) is left out.
    """
    return await _parse(request, iter([body]))


async def parse_spooled(request: Request, body: SpooledBody) -> FormData:
    """Parse the spooled body, read back in chunks; files go to the parser's own spools."""
    return await _parse(request, body.chunks())


async def _parse(request: Request, chunks: Iterator[bytes]) -> FormData:
    async def replay() -> Message:
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

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
