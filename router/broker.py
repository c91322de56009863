"""Connections to the broker named by ``INTAKE_BROKER_URL``.

The embedded default is kombu's ``filesystem://`` transport with one shared
folder for messages and one for exchange bindings, under the data
directory, so a consumer in another process on the same machine sees what
the relay publishes.

kombu's virtual transports (filesystem among them) put a requeued or
restored message back into *every* queue bound to its exchange and routing
key, not into the queue it came from: one retry by the acknowledgement
worker would deliver the complaint a second time on ``complaints.inbound``.
``EmbeddedTransport`` remembers the queue each message was taken from and
puts it back there only, as RabbitMQ does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kombu import Connection
from kombu.transport import filesystem

from config.settings import Settings
from normalizer.errors import OurFailure
from router.topology import Topology, build_topology

CONNECT_TIMEOUT = 5.0
# Where a message taken from the embedded broker came from (its delivery_info).
SOURCE_QUEUE = "x-intake-queue"
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def is_amqp(url: str) -> bool:
    return scheme_of(url) in AMQP_SCHEMES


class _EmbeddedChannel(filesystem.Channel):
    """A filesystem channel whose requeue goes back to the message's own queue."""

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any
    ) -> Any:
        def stamped(message: Any) -> Any:
            _remember_queue(message, queue)
            return callback(message)

        return super().basic_consume(queue, no_ack, stamped, consumer_tag, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        message = super().basic_get(queue, no_ack, **kwargs)
        if message is not None:
            _remember_queue(message, queue)
        return message

    def _restore(self, message: Any) -> None:
        queue = message.delivery_info.get(SOURCE_QUEUE)
        if queue is None:  # not taken through this channel: kombu's own rule
            super()._restore(message)
            return
        payload = message.serializable()
        payload["redelivered"] = True
        self._put(queue, payload)


class EmbeddedTransport(filesystem.Transport):
    Channel = _EmbeddedChannel


def _remember_queue(message: Any, queue: str) -> None:
    message.delivery_info[SOURCE_QUEUE] = queue


def topology_for(settings: Settings) -> Topology:
    return build_topology(
        settings.topology_prefix,
        quorum=settings.quorum_queues and is_amqp(settings.resolved_broker_url),
    )


def connect(
    settings: Settings, *, heartbeat: float = 0, reply_timeout: float | None = None
) -> Connection:
    """A kombu connection (not yet opened) for the configured broker.

    AMQP only: ``reply_timeout`` bounds every wait for the broker's answer
    (py-amqp's socket read and write timeouts; by default it waits for ever),
    ``heartbeat`` lets a consumer notice a broker that went silent.
    """
    url = settings.resolved_broker_url
    options: dict[str, object] = {}
    transport: type[EmbeddedTransport] | None = None
    if scheme_of(url) == "filesystem":
        transport = EmbeddedTransport
        # kombu warns on every connection to a filesystem URL without a host.
        url = url if urlsplit(url).hostname else "filesystem://localhost/"
        folder = settings.broker_dir.resolve()
        for sub in ("messages", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder / "messages"),
            "data_folder_out": str(folder / "messages"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    elif is_amqp(url) and reply_timeout is not None:
        options = {"read_timeout": reply_timeout, "write_timeout": reply_timeout}
    return Connection(
        url,
        transport=transport,
        connect_timeout=CONNECT_TIMEOUT,
        heartbeat=heartbeat,
        transport_options=options,
    )


def describe(url: str) -> str:
    """The URL without its password, for logs and /readyz."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


class BrokerUnavailable(OurFailure):
    """The broker could not be reached; nothing was published or taken from a queue."""


@dataclass
class BrokerProbe:
    """Is the broker reachable? Cached briefly so /readyz can be polled often."""

    settings: Settings
    ttl: float = 2.0
    _checked_at: float = 0.0
    _result: tuple[bool, str] = (False, "not checked")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> tuple[bool, str]:
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl:
                return self._result
            self._result = self._probe()
            self._checked_at = time.monotonic()
            return self._result

    def _probe(self) -> tuple[bool, str]:
        url = self.settings.resolved_broker_url
        connection = connect(self.settings)
        try:
            if is_amqp(url):
                connection.ensure_connection(max_retries=1, timeout=2)
            else:
                connection.default_channel  # noqa: B018 (opens the transport)
            return True, describe(url)
        except Exception as exc:
            return False, f"{describe(url)}: {type(exc).__name__}"
        finally:
            connection.release()
