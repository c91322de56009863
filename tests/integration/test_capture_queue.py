"""Captures asked for on an event loop, committed by one writer thread in batches.

Each caller gets its own capture (or its own repeat), durable when it
returns; many callers at once share commits; a store that fails answers
every caller of the batch with the error; closing commits what is queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from gateway.lib.capture_queue import CaptureQueue
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.captures import Capture, Captured
from gateway.store.db import reading
from gateway.store.tables import IntakeRow

pytestmark = pytest.mark.integration

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own (the browser tests hold a loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def item(number: int) -> Capture:
    return Capture(
        channel="email",
        data=f"Subject: {number}\r\n\r\nMon transfert n'est pas arrivé.\r\n".encode(),
        content_type="message/rfc822",
        received_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        dedup_key=f"queue-test:{number}",
    )


def rows(services: Services) -> int:
    with reading(services.store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(IntakeRow)) or 0)


def test_many_captures_at_once_share_commits_and_each_gets_its_own(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = CaptureQueue(services.store.captures)
    gate = threading.Event()
    real = services.store.captures.capture_many

    def held_first(items: list[Capture]) -> list[Captured | Exception]:
        gate.wait(10)  # the first commit waits until everyone has queued
        return real(items)

    monkeypatch.setattr(services.store.captures, "capture_many", held_first)

    async def main() -> list[Captured]:
        first = asyncio.ensure_future(writer.capture(item(0)))
        await asyncio.sleep(0.2)
        rest = [asyncio.ensure_future(writer.capture(item(n))) for n in range(1, 50)]
        await asyncio.sleep(0.2)
        gate.set()
        return [await first, *[await task for task in rest]]

    try:
        captured = run(main())
    finally:
        writer.close()
    assert len({c.reference for c in captured}) == 50 and all(c.created for c in captured)
    assert rows(services) == 50
    # The first alone, the 49 queued behind it together.
    assert writer.batches == 2


def test_a_repeat_in_the_same_batch_answers_the_first_reference(services: Services) -> None:
    writer = CaptureQueue(services.store.captures)

    async def main() -> list[Captured]:
        return list(await asyncio.gather(*(writer.capture(item(7)) for _ in range(5))))

    try:
        captured = run(main())
    finally:
        writer.close()
    assert len({c.reference for c in captured}) == 1
    assert [c.created for c in captured].count(True) == 1
    assert rows(services) == 1


def test_a_failing_store_answers_each_caller_with_the_error(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = CaptureQueue(services.store.captures)

    def down(_items: list[Capture]) -> list[Captured]:
        raise StoreUnavailable("disk I/O error")

    monkeypatch.setattr(services.store.captures, "capture_many", down)

    async def main() -> list[BaseException | Captured]:
        return list(
            await asyncio.gather(
                *(writer.capture(item(n)) for n in range(3)), return_exceptions=True
            )
        )

    try:
        outcomes = run(main())
    finally:
        writer.close()
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert rows(services) == 0


def test_closing_commits_what_is_queued_and_a_later_capture_starts_it_again(
    services: Services,
) -> None:
    writer = CaptureQueue(services.store.captures)

    async def one(number: int) -> Captured:
        return await writer.capture(item(number))

    run(one(1))
    writer.close()
    assert run(one(2)).created
    writer.close()
    assert rows(services) == 2


def test_a_batch_with_a_wrong_number_of_outcomes_fails_its_callers_and_the_next_works(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = CaptureQueue(services.store.captures)
    real = services.store.captures.capture_many
    monkeypatch.setattr(services.store.captures, "capture_many", lambda _items: [])

    async def one(number: int) -> Captured:
        return await writer.capture(item(number))

    try:
        with pytest.raises(RuntimeError, match="wrong number of outcomes"):
            run(one(1))
        monkeypatch.setattr(services.store.captures, "capture_many", real)
        assert run(one(2)).created
    finally:
        writer.close()
    assert rows(services) == 1
