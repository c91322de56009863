"""Consuming through a link to RabbitMQ that goes silent without closing anything.

``router.consumer.subscribe`` is what ``intake consume`` and the
acknowledgement worker read their queue with. Here it reads the machine's
RabbitMQ through ``TcpProxy``, which can stop forwarding while keeping the
connection open (``blackhole``). A polite AMQP goodbye waits for answers
that never come on such a link: these tests check that letting go is
bounded anyway, that a delivery not acknowledged is not lost by it, and that
heartbeats make a waiting consumer notice the silence.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from amqp.exceptions import ConnectionForced
from kombu import Connection, Producer
from kombu.message import Message

from config.settings import Settings, load_settings
from router.broker import topology_for
from router.consumer import GOODBYE_SECONDS, Subscription, consume_messages, subscribe
from router.publisher import declare_topology
from tests.peers.processes import wait_until
from tests.peers.services import RABBITMQ_URL
from tests.peers.tcpproxy import TcpProxy

# Letting go: the goodbye's own bound, plus a poll and a loaded 2-core machine.
LET_GO_BOUND = GOODBYE_SECONDS + 6.0


@pytest.fixture
def proxied(data_dir: Path, topology_prefix: str, rabbitmq_proxy: TcpProxy) -> Settings:
    return load_settings(
        data_dir=data_dir, broker_url=rabbitmq_proxy.url(), topology_prefix=topology_prefix
    )


def put(settings: Settings, body: str) -> None:
    """One message on the inbound queue, published straight to RabbitMQ (not proxied)."""
    topology = topology_for(settings)
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        declare_topology(connection, topology)
        Producer(connection.default_channel, exchange=topology.exchange).publish(
            body, routing_key="complaint.email.fr", delivery_mode=2
        )


def ready(settings: Settings) -> int:
    """Messages waiting in the inbound queue, not held by any consumer."""
    name = topology_for(settings).inbound.name
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        return int(connection.default_channel.queue_declare(name, passive=True).message_count)


def next_delivery(link: Subscription) -> Message:
    message = wait_until(lambda: link.get(0.2), "the delivery")
    assert message is not None
    return message


def finishes(action: Callable[[], object], within: float) -> float:
    """Run ``action`` in a thread; fail unless it ends within ``within`` seconds; its duration."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still waiting on the silent broker after {within:.0f} s"
    if errors:
        raise errors[0]
    return time.monotonic() - start


def test_a_subscription_is_let_go_of_within_seconds_when_the_broker_went_silent(
    proxied: Settings, rabbitmq_proxy: TcpProxy
) -> None:
    def subscribe_then_silence() -> None:
        with subscribe(proxied, topology_for(proxied).inbound, prefetch_count=1) as link:
            assert link.get(0.2) is None  # subscribed, idle
            rabbitmq_proxy.blackhole()

    finishes(subscribe_then_silence, LET_GO_BOUND)


def test_a_delivery_held_when_the_broker_went_silent_goes_back_to_the_queue(
    proxied: Settings, rabbitmq_proxy: TcpProxy
) -> None:
    put(proxied, "held, never acknowledged")
    held: list[str] = []

    def take_then_silence() -> None:
        with subscribe(proxied, topology_for(proxied).inbound, prefetch_count=1) as link:
            held.append(next_delivery(link).payload)
            rabbitmq_proxy.blackhole()

    finishes(take_then_silence, LET_GO_BOUND)
    assert held == ["held, never acknowledged"]
    rabbitmq_proxy.restore()  # the broker sees the old connection end
    wait_until(lambda: ready(proxied) == 1, "the held delivery back in the queue")


def test_a_delivery_not_acknowledged_goes_back_to_the_queue_after_a_polite_goodbye(
    proxied: Settings,
) -> None:
    put(proxied, "read, not acknowledged")
    with subscribe(proxied, topology_for(proxied).inbound, prefetch_count=1) as link:
        assert next_delivery(link).payload == "read, not acknowledged"
    wait_until(lambda: ready(proxied) == 1, "the delivery back in the queue")


def test_intake_consume_with_a_timeout_returns_when_the_broker_went_silent(
    proxied: Settings, rabbitmq_proxy: TcpProxy
) -> None:
    put(proxied, "the only message")
    bodies: list[str] = []

    def handle(body: str) -> None:
        bodies.append(body)
        rabbitmq_proxy.blackhole()  # its ack goes nowhere, and so would the goodbye

    counted: list[int] = []
    finishes(lambda: counted.append(consume_messages(proxied, handle, timeout=1)), 1 + LET_GO_BOUND)
    assert counted == [1] and bodies == ["the only message"]


def test_missed_heartbeats_end_a_subscription_waiting_on_a_silent_broker(
    proxied: Settings, rabbitmq_proxy: TcpProxy
) -> None:
    with subscribe(proxied, topology_for(proxied).inbound, prefetch_count=1, heartbeat=2) as link:
        assert link.get(0.2) is None
        rabbitmq_proxy.blackhole()
        deadline = time.monotonic() + 30
        with pytest.raises(ConnectionForced):
            while time.monotonic() < deadline:
                link.get(0.5)


def test_dead_letter_look_ups_fail_instead_of_hanging_on_a_silent_broker(
    proxied: Settings, rabbitmq_proxy: TcpProxy
) -> None:
    # `intake dead-letters`, the ops page and /metrics look at the dead letters.
    from router.deadletters import DeadLetters

    dead = DeadLetters(proxied)
    assert dead.count() == 0

    def silenced_mid_look() -> None:
        with pytest.raises(Exception), dead._connection() as connection:
            rabbitmq_proxy.blackhole()
            dead._depth(connection)

    finishes(silenced_mid_look, within=30.0)
