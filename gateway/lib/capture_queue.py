"""Captures asked for on an event loop, committed by one writer thread in batches.

edge coroutine (SMTP DATA) -> **CaptureQueue.capture** (a future, no thread
hop) ... the writer thread: whatever is queued -> ``CaptureStore.capture_many``
(one group commit) -> every future of the batch resolved in one call back
onto its loop.

Why not a worker thread per capture: each one costs two thread switches and
a wake-up under the GIL, on the loop that also serves every session's
commands. The writer takes the queue a batch at a time while the previous
commit is on its way to the disk, so a busy edge waits for one fsync per
batch, as with the group commit, without a thread per waiting message.
The writer starts with the first capture and ends after ``IDLE_SECONDS``
without one.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.store.captures import Capture, Captured, CaptureStore
from gateway.store.intake import GROUP_MAX_BATCH

log = logging.getLogger("intake.store")

IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class _Waiting:
    item: Capture
    future: asyncio.Future[Captured]
    loop: asyncio.AbstractEventLoop


class CaptureQueue:
    def __init__(
        self,
        captures: CaptureStore,
        *,
        max_batch: int = GROUP_MAX_BATCH,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.captures = captures
        self.max_batch = max_batch
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # commits made, for tests and benchmarks

    async def capture(self, item: Capture) -> Captured:
        """``CaptureStore.capture`` for a coroutine: durable when it returns, or raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Captured] = loop.create_future()
        self._queue.put(_Waiting(item, future, loop))
        self._start()  # after the put: a writer ending now sees it, or a new one starts
        return await future

    def close(self) -> None:
        """Let the writer finish what is queued, then stop it (a later capture starts it again)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write, name="capture-writer", daemon=True
                )
                self._thread.start()

    def _write(self) -> None:
        try:
            self._write_batches()
        finally:  # however it ends, the next capture finds no writer and starts one
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _write_batches(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # a capture queued after this starts a new writer
                        self._thread = None
                        return
                continue
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    waiting = self._queue.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    stopping = True
                    break
                batch.append(waiting)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: Sequence[_Waiting]) -> None:
        try:
            outcomes: Sequence[Captured | BaseException] = self.captures.capture_many(
                [waiting.item for waiting in batch]
            )
        except Exception as exc:  # the whole batch failed (our store): each caller hears it
            outcomes = [exc] * len(batch)
        if len(outcomes) != len(batch):  # a bug below: nobody may wait forever
            outcomes = [RuntimeError("capture gave a wrong number of outcomes")] * len(batch)
        self.batches += 1
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Waiting, object]]] = {}
        for waiting, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(waiting.loop, []).append((waiting, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, settled)
            except RuntimeError:  # that loop is closed: nobody waits for these any more
                log.warning("captures committed for an event loop that is gone")


def _resolve(settled: Sequence[tuple[_Waiting, object]]) -> None:
    for waiting, outcome in settled:
        if waiting.future.done():  # its caller gave up (the session was closed)
            continue
        if isinstance(outcome, BaseException):
            waiting.future.set_exception(outcome)
        else:
            waiting.future.set_result(outcome)  # type: ignore[arg-type]
