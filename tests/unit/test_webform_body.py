"""Reading a form POST in two steps: an anonymous post costs its head, never its files.

``PostBody.read_head`` runs before the CSRF check and the flood guard, so
what an anonymous post makes the gateway read and hold must stay small
whatever its size; ``spool_rest`` (after the guards) puts the body on disk,
not in memory. The body here is a real multipart post (built by httpx, as a
browser would send it) fed to a real Starlette request in chunks, counting
what was pulled.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from channels.webform.body import (
    FIELDS_BYTES,
    SPOOL_MEMORY,
    PostBody,
    SlowBody,
    parse_form,
    parse_spooled,
)
from channels.webform.form import Submission

CHUNK = 64 * 1024
CAP = 1_000_000
T = TypeVar("T")
TEXT = "Mon transfert de 900 dirhams vers Tanger n'est jamais arrivé."


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a loop of its own, in a thread of its own.

    A test run's browser (Playwright's sync API) keeps an event loop running
    in the main thread, where ``asyncio.run`` refuses to start another.
    """
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


class CountedBody:
    """The ASGI ``receive`` of one request, delivering the body chunk by chunk."""

    def __init__(self, body: bytes) -> None:
        self._chunks: Iterator[bytes] = (
            body[start : start + CHUNK] for start in range(0, len(body), CHUNK)
        )
        self._left = len(body)
        self.pulled = 0

    async def __call__(self) -> Message:
        chunk = next(self._chunks, b"")
        self.pulled += len(chunk)
        self._left -= len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self._left > 0}


def multipart(file_bytes: int) -> tuple[bytes, str]:
    """A form post with the typed fields first and one attachment of ``file_bytes``."""
    built = httpx.Request(
        "POST",
        "http://gateway.test/fr/",
        data={"name": "Fatima Zahra", "text": TEXT},
        files=[("attachments", ("scan.png", b"\x00" * file_bytes, "image/png"))],
    )
    return built.read(), built.headers["content-type"]


def request_for(body: bytes, content_type: str, *, declared: bool) -> tuple[Request, CountedBody]:
    headers = [(b"content-type", content_type.encode())]
    if declared:
        headers.append((b"content-length", str(len(body)).encode()))
    receive = CountedBody(body)
    scope = {"type": "http", "method": "POST", "path": "/fr/", "headers": headers}
    return Request(scope, receive), receive


def test_a_post_declared_over_the_cap_is_read_no_further_than_its_head() -> None:
    body, content_type = multipart(file_bytes=20 * CAP)
    request, receive = request_for(body, content_type, declared=True)
    post = PostBody(request, CAP)

    kept = run(post.read_head())

    assert post.declared_over
    assert len(kept) == FIELDS_BYTES
    assert receive.pulled <= FIELDS_BYTES + CHUNK


def test_any_post_is_read_no_further_than_its_head_before_the_guards() -> None:
    """S1: before the token and the flood guard, a post within the cap costs its head too."""
    body, content_type = multipart(file_bytes=CAP // 2)
    request, receive = request_for(body, content_type, declared=True)
    post = PostBody(request, CAP)

    kept = run(post.read_head())

    assert not post.declared_over and kept == body[:FIELDS_BYTES]
    assert receive.pulled <= FIELDS_BYTES + CHUNK < len(body)


def test_a_streamed_post_is_read_no_further_than_the_cap() -> None:
    body, content_type = multipart(file_bytes=20 * CAP)
    request, receive = request_for(body, content_type, declared=False)
    post = PostBody(request, CAP)

    async def read() -> object:
        await post.read_head()
        return await post.spool_rest()

    assert run(read()) is None
    assert CAP < receive.pulled <= CAP + CHUNK


def test_the_head_of_a_post_holds_what_was_typed() -> None:
    body, content_type = multipart(file_bytes=20 * CAP)
    request, _ = request_for(body, content_type, declared=True)

    async def head_fields() -> Submission:
        post = PostBody(request, CAP)
        return Submission.from_form(await parse_form(request, await post.read_head()), [])

    sub = run(head_fields())

    assert sub.get("text") == TEXT and sub.get("name") == "Fatima Zahra"


def test_a_post_under_the_cap_is_spooled_to_disk_whole_and_parsed_back() -> None:
    body, content_type = multipart(file_bytes=3 * SPOOL_MEMORY)
    request, _ = request_for(body, content_type, declared=False)
    post = PostBody(request, 10 * SPOOL_MEMORY)

    async def spool_and_parse() -> tuple[bool, int, str, bytes, bytes]:
        await post.read_head()
        spooled = await post.spool_rest()
        assert spooled is not None
        rolled = bool(spooled.file._rolled)  # type: ignore[attr-defined]  # on disk, not in memory
        form = await parse_spooled(request, spooled)
        upload = form["attachments"]
        assert not isinstance(upload, str)
        data = await upload.read()
        whole = spooled.read_all()
        spooled.close()
        return rolled, spooled.size, spooled.sha256, whole, data

    rolled, size, sha256, whole, data = run(spool_and_parse())

    assert rolled
    assert whole == body and size == len(body)
    assert sha256 == hashlib.sha256(body).hexdigest()
    assert data == b"\x00" * 3 * SPOOL_MEMORY


class StalledBody(CountedBody):
    """A body whose client stops sending after ``sent`` bytes, without closing."""

    def __init__(self, body: bytes, sent: int) -> None:
        super().__init__(body)
        self.sent = sent

    async def __call__(self) -> Message:
        if self.pulled >= self.sent:
            await asyncio.Event().wait()  # nothing more ever comes
        return await super().__call__()


def stalled_post(sent: int) -> PostBody:
    body, content_type = multipart(file_bytes=CAP // 2)
    headers = [(b"content-type", content_type.encode())]
    scope = {"type": "http", "method": "POST", "path": "/fr/", "headers": headers}
    return PostBody(Request(scope, StalledBody(body, sent)), CAP, timeout=0.2)


def test_a_head_that_does_not_come_in_time_is_a_slow_body() -> None:
    """S1/S18: a post holding its slot without sending its fields is given up."""
    post = stalled_post(sent=CHUNK)

    with pytest.raises(SlowBody):
        run(post.read_head())


def test_a_body_that_stops_after_its_head_is_a_slow_body() -> None:
    post = stalled_post(sent=FIELDS_BYTES + CHUNK)

    async def read() -> object:
        await post.read_head()
        return await post.spool_rest()

    with pytest.raises(SlowBody):
        run(read())
