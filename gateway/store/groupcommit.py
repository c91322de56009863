"""Group commit: callers that write at the same time share one transaction and one fsync.

channel -> ``ComplaintStore.record_complaint`` -> **GroupCommit.submit** ->
one batch -> ``commit(batch)`` (blob folders fsynced once, every row in one
transaction) -> each caller gets its own outcome.

On SQLite every commit is an fsync under the one writer lock, so writers
queue: committing them one by one costs an fsync each. Here the first caller
to arrive becomes the *leader*: it takes everything queued (up to
``max_batch``), commits it, and hands the outcome of each item back to the
thread that submitted it. Callers arriving meanwhile queue up and form the
next batch, so batches grow with the load and a lone caller never waits for
company (unless a ``window`` is set). No background thread: nothing to start,
stop or lose at fork.

``commit`` returns one outcome per item (a result, or that item's own
exception: a dedup conflict of one item must not fail the others). If it
raises, the error is every item's outcome of that batch: our own failure,
nothing of it was acknowledged. A failed item is never tried again here (its
caller answers 503 / 451 and the sender retries), and the items queued
behind a failing batch form the next one, whose commit is bounded by their
own deadline (``ComplaintStore`` waits for the write lock only until its
oldest item's): a locked database costs each caller at most its own wait,
not the sum of the batches ahead of it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Ticket(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Batches concurrent ``submit`` calls into calls of ``commit``."""

    def __init__(
        self,
        commit: Callable[[Sequence[T]], Sequence[R | Exception]],
        *,
        max_batch: int = 128,
        window: float = 0.0,
    ) -> None:
        """``window``: seconds a leader waits for more items when its batch is not full."""
        self._commit = commit
        self.max_batch = max_batch
        self.window = window
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._finished = threading.Condition(self._lock)
        self._queue: deque[_Ticket[T, R]] = deque()
        self._leading = False
        self.batches = 0  # how many commits ran, for tests and benchmarks

    @property
    def queued(self) -> int:
        """Items waiting for the next batch (not the one being committed)."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: T) -> R:
        """Commit ``item`` (with whatever else is queued); its result, or its error raised."""
        ticket: _Ticket[T, R] = _Ticket(item)
        self._wait_or_lead([ticket])
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]  # set when done without error

    def submit_many(self, items: Sequence[T]) -> list[R | Exception]:
        """Commit several items together; one outcome per item, errors returned, not raised."""
        tickets: list[_Ticket[T, R]] = [_Ticket(item) for item in items]
        self._wait_or_lead(tickets)
        outcomes: list[R | Exception] = []
        for ticket in tickets:
            if ticket.error is not None and not isinstance(ticket.error, Exception):
                raise ticket.error
            outcomes.append(ticket.error if ticket.error is not None else ticket.result)  # type: ignore[arg-type]
        return outcomes

    # -- the queue ---------------------------------------------------------------
    def _wait_or_lead(self, tickets: list[_Ticket[T, R]]) -> None:
        with self._lock:
            self._queue.extend(tickets)
            self._arrived.notify()
            while not _all_done(tickets):
                if not self._leading:
                    self._leading = True
                    break
                self._finished.wait()
            else:
                return
        try:
            while not _all_done(tickets):
                batch = self._take()
                if not batch:  # cannot happen: our own tickets are queued until done
                    raise RuntimeError("group commit lost track of its items")
                self._run(batch)
        finally:
            with self._lock:
                self._leading = False
                self._finished.notify_all()

    def _take(self) -> list[_Ticket[T, R]]:
        with self._lock:
            if self.window > 0 and len(self._queue) < self.max_batch:
                deadline = time.monotonic() + self.window
                while len(self._queue) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._arrived.wait(left):
                        break
            count = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(count)]

    def _run(self, batch: list[_Ticket[T, R]]) -> None:
        outcomes: Sequence[R | BaseException]
        try:
            outcomes = self._commit([ticket.item for ticket in batch])
            if len(outcomes) != len(batch):
                outcomes = [RuntimeError("commit gave a wrong number of outcomes")] * len(batch)
        except Exception as error:
            outcomes = [error] * len(batch)
        except BaseException as error:  # interrupted: nobody may wait forever
            self._finish(batch, [error] * len(batch))
            raise
        self._finish(batch, outcomes)

    def _finish(self, batch: list[_Ticket[T, R]], outcomes: Sequence[object]) -> None:
        with self._lock:
            self.batches += 1
            for ticket, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    ticket.error = outcome
                else:
                    ticket.result = outcome  # type: ignore[assignment]
                ticket.done = True
            self._finished.notify_all()


def _all_done(tickets: list[_Ticket[T, R]]) -> bool:
    return all(ticket.done for ticket in tickets)
