"""Publishers: put a batch of outbox items on the broker and say which ones made it.

One class per kind of broker, chosen by URL scheme from ``PUBLISHERS``:

- ``ConfirmingPublisher`` (AMQP, RabbitMQ): publisher confirms, ``mandatory``,
  persistent delivery. A batch is written in one go and the relay waits for
  the broker's acks together (with a timeout), which keeps the guarantee of
  per-message confirms at a fraction of the round trips. An unroutable
  (returned) or nacked message counts as not published. A message larger
  than the broker's ``max_message_size`` makes RabbitMQ close the channel
  (406): the acks already received still count, the offender is reported
  in ``held`` with the broker's words, and the limit is remembered so the
  message is not sent again and cannot block the rest of the outbox.
- ``KombuPublisher`` (embedded and other kombu transports): plain publish;
  for ``filesystem://`` the disk is synced after the batch, because that
  transport writes without fsync.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kombu import Connection, Producer

from gateway.store.outbox import OutboxItem
from router.broker import scheme_of
from router.topology import Topology

log = logging.getLogger("intake.router")


# RabbitMQ's words when a message exceeds max_message_size (channel closed with 406).
_BROKER_SIZE_LIMIT = re.compile(r"larger than configured max size (\d+)")


@dataclass
class BatchOutcome:
    published: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    # Rows the broker will never take (too large): also listed in ``failed``,
    # so a relay that does not know ``held`` still records the reason.
    held: dict[int, str] = field(default_factory=dict)


def broker_size_limit(error: BaseException) -> int | None:
    """The broker's max_message_size when ``error`` is its refusal of a large message."""
    found = _BROKER_SIZE_LIMIT.search(str(error))
    return int(found.group(1)) if found else None


class Publisher(Protocol):
    def publish(self, items: Sequence[OutboxItem]) -> BatchOutcome: ...
    def close(self) -> None: ...


def declare_topology(connection: Connection, topology: Topology) -> None:
    """Declare exchanges, queues and bindings (idempotent)."""
    channel = connection.default_channel
    for queue in topology.queues:
        queue.bind(channel).declare()


class KombuPublisher:
    def __init__(self, connection: Connection, topology: Topology) -> None:
        self.connection = connection
        self.topology = topology
        self._declared = False
        self._sync_disk = scheme_of(connection.as_uri()) == "filesystem"

    def publish(self, items: Sequence[OutboxItem]) -> BatchOutcome:
        outcome = BatchOutcome()
        if not self._declared:
            declare_topology(self.connection, self.topology)
            self._declared = True
        producer = Producer(self.connection.default_channel, exchange=self.topology.exchange)
        for item in items:
            producer.publish(
                item.payload,
                routing_key=item.routing_key,
                content_type=item.content_type,
                content_encoding="utf-8",
                delivery_mode=2,
                message_id=item.event_id,
                retry=False,
            )
            outcome.published.append(item.id)
        if self._sync_disk:
            os.sync()
        return outcome

    def close(self) -> None:
        self.connection.release()


class ConfirmingPublisher:
    """AMQP with publisher confirms, waiting for a whole batch at once."""

    def __init__(self, connection: Connection, topology: Topology, confirm_timeout: float) -> None:
        self.connection = connection
        self.topology = topology
        self.confirm_timeout = confirm_timeout
        self._channel: Any = None
        self._next_tag = 1
        self._pending: dict[int, int] = {}  # delivery tag -> outbox id
        self._outcome = BatchOutcome()
        self._returned: dict[str, str] = {}  # message id -> reason
        self._event_ids: dict[int, str] = {}  # outbox id -> message id
        self._broker_limit: int | None = None  # learnt from a 406 refusal

    def _open(self) -> Any:
        if self._channel is None:
            self.connection.ensure_connection(max_retries=1)
            declare_topology(self.connection, self.topology)
            channel = self.connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._channel = channel
            self._next_tag = 1
        return self._channel

    def _settle(self, tag: int, multiple: bool, settle: Callable[[int], None]) -> None:
        tags = [t for t in self._pending if t <= tag] if multiple else [tag]
        for settled in tags:
            outbox_id = self._pending.pop(settled, None)
            if outbox_id is not None:
                settle(outbox_id)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple, self._acked)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple, lambda i: self._outcome.failed.__setitem__(i, "nacked"))

    def _acked(self, outbox_id: int) -> None:
        reason = self._returned.pop(self._event_ids.get(outbox_id, ""), None)
        if reason is None:
            self._outcome.published.append(outbox_id)
        else:
            self._outcome.failed[outbox_id] = reason

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        message_id = message.properties.get("message_id", "")
        self._returned[message_id] = f"unroutable: {exc} ({exchange} {routing_key})"

    def publish(self, items: Sequence[OutboxItem]) -> BatchOutcome:
        self._outcome = BatchOutcome()
        self._returned.clear()
        self._event_ids = {item.id: item.event_id for item in items}
        sendable = [item for item in items if not self._known_too_large(item)]
        try:
            self._publish_and_wait(sendable)
        except Exception as exc:
            limit = broker_size_limit(exc)
            if limit is None:
                self._reset()
                raise
            self._on_size_refusal(sendable, limit, exc)
            return self._outcome
        for outbox_id in self._pending.values():
            self._outcome.failed[outbox_id] = "no confirm before timeout"
        if self._pending:
            # Late acks must not be credited to the next batch's tags.
            self._reset()
        return self._outcome

    def _known_too_large(self, item: OutboxItem) -> bool:
        if self._broker_limit is None or len(item.payload) <= self._broker_limit:
            return False
        self._hold(item, self._broker_limit, "not sent")
        return True

    def _hold(self, item: OutboxItem, limit: int, what: str) -> None:
        reason = (
            f"message of {len(item.payload)} bytes is larger than the broker's "
            f"max_message_size of {limit} ({what})"
        )
        self._outcome.failed[item.id] = reason
        self._outcome.held[item.id] = reason

    def _on_size_refusal(self, items: Sequence[OutboxItem], limit: int, exc: Exception) -> None:
        """The broker closed the channel over a large message: keep what it confirmed."""
        log.error("the broker refused a message: %s", exc)
        self._broker_limit = limit
        acked = set(self._outcome.published)
        for item in items:
            if item.id in acked:
                continue
            if len(item.payload) > limit:
                self._hold(item, limit, "refused by the broker")
            else:
                self._outcome.failed[item.id] = "not confirmed: the broker closed the channel"
        self._reset()

    def _publish_and_wait(self, items: Sequence[OutboxItem]) -> None:
        channel = self._open()
        for item in items:
            message = channel.prepare_message(
                item.payload,
                content_type=item.content_type,
                content_encoding="utf-8",
                properties={"delivery_mode": 2, "message_id": item.event_id},
            )
            channel.basic_publish(
                message,
                exchange=self.topology.exchange.name,
                routing_key=item.routing_key,
                mandatory=True,
                timeout=self.confirm_timeout,
            )
            self._pending[self._next_tag] = item.id
            self._next_tag += 1
        deadline = time.monotonic() + self.confirm_timeout
        while self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:
                return

    def _reset(self) -> None:
        """Drop the channel and the connection without a word to the broker.

        Called after an error or a confirm timeout, when the link may be
        silent: a polite AMQP close waits for the broker's CloseOk with no
        timeout, so on a silent link it would never return.
        """
        self._pending.clear()
        self._channel = None
        try:
            self.connection.collect()
        except Exception as exc:  # a broken connection may fail to let go too
            log.debug("dropping broken connection: %s", exc)

    def close(self) -> None:
        if self._channel is None:  # never opened, or already dropped after a failure
            self._reset()
            return
        self._channel = None
        try:
            self._bound_the_goodbye()
            self.connection.close()
        except Exception as exc:  # closing a broken connection may fail too
            log.debug("closing connection: %s", exc)
            self._reset()

    def _bound_the_goodbye(self) -> None:
        """A polite close waits for the broker's CloseOk with no timeout of its own: on a
        silent link the relay would never stop. Bound it by the confirm timeout."""
        transport = getattr(self.connection._connection, "transport", None)
        sock = getattr(transport, "sock", None)
        if sock is not None:
            sock.settimeout(self.confirm_timeout)


def make_publisher(connection: Connection, topology: Topology, confirm_timeout: float) -> Publisher:
    """The publisher for this connection's transport."""
    factory = PUBLISHERS.get(scheme_of(connection.as_uri()))
    if factory is None:
        return KombuPublisher(connection, topology)
    return factory(connection, topology, confirm_timeout)


PUBLISHERS: dict[str, Callable[[Connection, Topology, float], Publisher]] = {
    "amqp": ConfirmingPublisher,
    "amqps": ConfirmingPublisher,
    "pyamqp": ConfirmingPublisher,
}
