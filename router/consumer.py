"""Reading a queue: the subscription every consumer of ours uses, and ``intake consume``.

``subscribe`` is how a consumer reads one queue: the acknowledgement worker
(gateway/acks) and ``intake consume``, the simplest downstream consumer
(a real consumer does the same with its own processing in place of
``handle``). It declares the same topology as the relay, so it can start
first, and hands out one delivery at a time; the caller acknowledges each
one after its work is done.

A subscription can always be let go of, also when the broker went silent
without closing anything (a partition, a frozen node): py-amqp waits for
the broker's answers (basic.cancel-ok, close-ok, declare-ok...) with no
timeout of its own, so a consumer saying goodbye on such a link would hang
for ever. Here every answer is awaited at most ``REPLY_TIMEOUT`` seconds,
the goodbye at most ``GOODBYE_SECONDS``, after which the socket is dropped
without a word. Nothing is lost that way: a delivery not yet acknowledged
goes back to its queue when the broker sees the connection end. Heartbeats
let a consumer that waits notice a silent broker and reconnect.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from kombu import Connection, Consumer, Queue
from kombu.message import Message

from config.settings import Settings
from router.broker import BrokerUnavailable, connect, topology_for
from router.publisher import declare_topology

log = logging.getLogger("intake.router")

_POLL = 1.0
# Longest wait for any broker answer while subscribed (a slow quorum-queue
# declare on a busy cluster still fits).
REPLY_TIMEOUT = 10.0
# Longest polite goodbye (cancel, then close) before the socket is dropped.
GOODBYE_SECONDS = 2.0
# Seconds; RabbitMQ's own default. A consumer busy with one delivery (an
# acknowledgement sent, or retried after its backoff) sends none meanwhile:
# two beats leave it two minutes, and past that the broker drops the
# connection and the delivery comes again, which the consumer must bear anyway.
HEARTBEAT = 60.0
# Deliveries the broker may hand ``intake consume`` ahead of its acks.
CONSUME_PREFETCH = 100


class Subscription:
    """One consumer of one queue on its own connection; see ``subscribe``."""

    def __init__(self, connection: Connection, queue: Queue, prefetch_count: int) -> None:
        self.connection = connection
        self._delivered: deque[Message] = deque()
        self.consumer = Consumer(
            connection.default_channel,
            queues=[queue],
            on_message=self._delivered.append,
            prefetch_count=prefetch_count,
        )
        self.consumer.consume()

    def get(self, timeout: float) -> Message | None:
        """The next delivery, or None when none came within about ``timeout`` seconds.

        Raises the transport's error when the link broke or the broker missed
        its heartbeats.
        """
        if not self._delivered:
            with contextlib.suppress(TimeoutError):  # nothing arrived
                self.connection.drain_events(timeout=timeout)
            self.connection.heartbeat_check()
        return self._delivered.popleft() if self._delivered else None

    def close(self) -> None:
        """Cancel and close politely within ``GOODBYE_SECONDS``, else drop the link.

        Deliveries received but not acknowledged go back to the queue either way.
        """
        if not self.connection.connected:
            self.connection.collect()
            return
        try:
            with _answers_within(self.connection, GOODBYE_SECONDS):
                self.consumer.cancel()
                self.connection.release()
        except Exception as exc:  # no answer in time, or a link already broken
            log.debug("dropping the consumer's connection: %s: %s", type(exc).__name__, exc)
            self.connection.collect()


def _answers_within(connection: Connection, seconds: float) -> AbstractContextManager[object]:
    """Bound every wait for the broker's answer inside the block (AMQP; no-op otherwise)."""
    raw = connection.connection if connection.connected else None
    transport: Any = getattr(raw, "transport", None)
    if transport is None or not hasattr(transport, "having_timeout"):
        return contextlib.nullcontext()
    bounded: AbstractContextManager[object] = transport.having_timeout(seconds)
    return bounded


@contextlib.contextmanager
def subscribe(
    settings: Settings,
    queue: Queue,
    *,
    prefetch_count: int,
    connect_retries: int = 0,
    heartbeat: float = HEARTBEAT,
) -> Iterator[Subscription]:
    """Consume ``queue`` on a new connection for the duration of the block.

    Raises ``BrokerUnavailable`` when the broker cannot be reached (after
    ``connect_retries`` more attempts), the transport's error when the link
    fails later on.
    """
    connection = connect(settings, heartbeat=heartbeat, reply_timeout=REPLY_TIMEOUT)
    try:
        try:
            connection.ensure_connection(max_retries=connect_retries)
        except Exception as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        declare_topology(connection, topology_for(settings))
        subscription = Subscription(connection, queue, prefetch_count)
    except BaseException:
        connection.collect()
        raise
    try:
        yield subscription
    finally:
        subscription.close()


def consume_messages(
    settings: Settings,
    handle: Callable[[str], None],
    *,
    count: int | None = None,
    timeout: float | None = None,
    dead_letters: bool = False,
) -> int:
    """Consume until ``count`` messages or ``timeout`` seconds of silence; returns how many.

    A message is acknowledged only after ``handle`` returned.
    """
    topology = topology_for(settings)
    queue = topology.dead_letters if dead_letters else topology.inbound
    received = 0
    prefetch = min(count or CONSUME_PREFETCH, CONSUME_PREFETCH)
    with subscribe(settings, queue, prefetch_count=prefetch, connect_retries=3) as link:
        last = time.monotonic()
        while count is None or received < count:
            wait = _POLL if timeout is None else min(_POLL, max(0.0, timeout))
            message = link.get(wait)
            if message is None:
                if timeout is not None and time.monotonic() - last >= timeout:
                    break
                continue
            body = message.body
            handle(body.decode("utf-8") if isinstance(body, bytes) else str(body))
            message.ack()
            received += 1
            last = time.monotonic()
    return received
