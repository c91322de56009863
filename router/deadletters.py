"""The dead-letter queue for operators: count, look without taking, replay.

complaints.inbound / .events / .acks --(rejected, delivery limit)--> exchange
``complaints.dlx`` -> queue ``complaints.dead`` -> **here** (``intake
dead-letters``, the operator page, ``/metrics``).

Looking must not lose anything: messages are fetched with ``basic.get``
without acknowledgement and left unacknowledged, so closing the channel
gives every one of them back to the queue. Replaying publishes a copy
first (with publisher confirms and ``mandatory`` on RabbitMQ) and
acknowledges the dead letter only after the broker confirmed the copy: a
failure in between leaves a duplicate at worst, never a loss.

A copy goes back to the queue the message died in (RabbitMQ's ``x-death``
header names it), through the default exchange: republishing to the topic
exchange would also hand it to every other queue bound to its routing key
(an acknowledgement's failure replayed would reach ``complaints.inbound``
again). Without ``x-death`` (other transports), the copy goes to the
``complaints`` exchange with its original routing key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Producer
from kombu.message import Message

from config.settings import Settings
from router.broker import BrokerUnavailable, connect, is_amqp, topology_for
from router.publisher import declare_topology
from router.topology import Topology

DEFAULT_LIMIT = 100
_CONFIRM_TIMEOUT = 10.0
# Every wait for the broker's answer (and the goodbye) ends after this: a broker
# gone silent makes `intake dead-letters`, the ops page and /metrics fail, not hang.
_REPLY_TIMEOUT = 5.0
# Longest wait for a quorum queue to count the messages a look gave back.
_SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, as a listing shows it."""

    position: int
    message_id: str
    routing_key: str
    # Where and why it died (RabbitMQ's x-death), when known.
    queue: str | None
    reason: str | None
    died_at: datetime | None
    deaths: int
    content_type: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def summary(self) -> dict[str, str]:
        """Reference, channel and type of a complaint event, when the body is one."""
        try:
            document = json.loads(self.body)
        except ValueError:
            return {}
        data = document.get("data") if isinstance(document, dict) else None
        found = {"type": str(document.get("type", ""))} if isinstance(document, dict) else {}
        if isinstance(data, dict):
            for key in ("reference", "channel", "kind"):
                if data.get(key):
                    found[key] = str(data[key])
        return found


@dataclass(frozen=True)
class ReplayOutcome:
    replayed: list[str]
    failed: dict[str, str]


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death") or []
    return deaths[0] if deaths and isinstance(deaths[0], dict) else {}


def _as_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _dead_letter(position: int, message: Message) -> DeadLetter:
    headers = dict(message.headers or {})
    death = _first_death(headers)
    body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    return DeadLetter(
        position=position,
        message_id=str(message.properties.get("message_id") or f"#{position}"),
        routing_key=str(message.delivery_info.get("routing_key") or ""),
        queue=str(death["queue"]) if death.get("queue") else None,
        reason=str(death["reason"]) if death.get("reason") else None,
        died_at=_as_time(death.get("time")),
        deaths=int(death.get("count") or 0),
        content_type=str(message.content_type or "application/octet-stream"),
        body=body,
        headers=headers,
    )


class DeadLetters:
    """The ``complaints.dead`` queue of this deployment's topology."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology: Topology = topology_for(settings)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with connect(self.settings, reply_timeout=_REPLY_TIMEOUT) as connection:
            try:
                connection.ensure_connection(max_retries=1, timeout=5)
                declare_topology(connection, self.topology)
            except Exception as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
            yield connection

    def count(self) -> int:
        """Messages waiting in the queue (a passive declare: nothing moves)."""
        with self._connection() as connection:
            return self._depth(connection)

    def peek(self, limit: int = DEFAULT_LIMIT) -> list[DeadLetter]:
        """The first ``limit`` dead letters, all left in the queue."""
        found: list[DeadLetter] = []

        def look(position: int, message: Message) -> bool:
            found.append(_dead_letter(position, message))
            return False

        self._walk(limit, look)
        return found

    def replay(
        self, wanted: set[str] | None, limit: int = DEFAULT_LIMIT, *, queue: str | None = None
    ) -> ReplayOutcome:
        """Publish again the dead letters whose message id is in ``wanted`` (None: all).

        ``queue``: only those that died in that queue (one message can die in
        several queues: complaints.inbound and complaints.acks both get a copy).
        """
        outcome = ReplayOutcome([], {})

        def take(_position: int, message: Message, publish: Callable[[DeadLetter], None]) -> bool:
            letter = _dead_letter(_position, message)
            if wanted is not None and letter.message_id not in wanted:
                return False
            if queue is not None and letter.queue != queue:
                return False
            try:
                publish(letter)
            except Exception as exc:
                outcome.failed[letter.message_id] = f"{type(exc).__name__}: {exc}"
                return False
            outcome.replayed.append(letter.message_id)
            return True

        with self._connection() as connection:
            publish = self._publisher(connection)
            self._walk(limit, lambda pos, msg: take(pos, msg, publish), connection)
        return outcome

    def _walk(
        self,
        limit: int,
        visit: Callable[[int, Message], bool],
        connection: Connection | None = None,
    ) -> None:
        """``basic.get`` up to ``limit`` messages; ack those ``visit`` took, give back the rest.

        The channel is closed at the end, which returns every message not
        acknowledged to the queue, in its place. A quorum queue takes them back
        asynchronously: wait (briefly) until they are counted again, so that
        the next look (or ``/metrics``) sees them all.
        """
        with self._connection() if connection is None else _borrowed(connection) as conn:
            before = self._depth(conn)
            taken = 0
            channel = conn.channel()
            try:
                queue = self.topology.dead_letters.bind(channel)
                for position in range(1, limit + 1):
                    message = queue.get(no_ack=False)
                    if message is None:
                        break
                    if visit(position, message):
                        message.ack()
                        taken += 1
            finally:
                channel.close()
            deadline = time.monotonic() + _SETTLE_SECONDS
            while self._depth(conn) < before - taken and time.monotonic() < deadline:
                time.sleep(0.02)

    def _depth(self, connection: Connection) -> int:
        ok = connection.default_channel.queue_declare(self.topology.dead_letters.name, passive=True)
        return int(ok.message_count)

    def _publisher(self, connection: Connection) -> Callable[[DeadLetter], None]:
        ours = {queue.name for queue in self.topology.queues}
        if not is_amqp(self.settings.resolved_broker_url):
            producer = Producer(connection.channel(), exchange=self.topology.exchange)

            def plain(letter: DeadLetter) -> None:
                producer.publish(
                    letter.body,
                    routing_key=letter.routing_key,
                    content_type=letter.content_type,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=letter.message_id,
                    headers=letter.headers,
                    retry=False,
                )

            return plain
        channel = connection.channel()

        def confirmed(letter: DeadLetter) -> None:
            exchange, key = self.topology.exchange.name, letter.routing_key
            if letter.queue in ours:
                exchange, key = "", str(letter.queue)  # the default exchange: that queue only
            message = channel.prepare_message(
                letter.body,
                content_type=letter.content_type,
                content_encoding="utf-8",
                headers=letter.headers,
                properties={"delivery_mode": 2, "message_id": letter.message_id},
            )
            channel.basic_publish_confirm(
                message,
                exchange=exchange,
                routing_key=key,
                mandatory=True,
                confirm_timeout=_CONFIRM_TIMEOUT,
            )

        return confirmed


@contextmanager
def _borrowed(connection: Connection) -> Iterator[Connection]:
    yield connection


class DeadLetterGauge:
    """The queue's depth for ``/metrics``, cached a few seconds; None when unreachable."""

    def __init__(self, settings: Settings, ttl: float = 5.0) -> None:
        self.queue = DeadLetters(settings)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = -ttl
        self._value: int | None = None

    def value(self) -> int | None:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                try:
                    self._value = self.queue.count()
                except Exception:
                    self._value = None
                self._at = time.monotonic()
            return self._value
