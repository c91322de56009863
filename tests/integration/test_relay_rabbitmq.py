"""The relay against the machine's RabbitMQ: exactly once, routing keys, unroutable messages.

Each test has its own prefix of exchange and queue names (``amqp_settings``).
Extra queues a test binds to prove routing are exclusive to the test's own
connection, so RabbitMQ deletes them when the test lets go.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kombu import Connection, Queue

from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store.intake import EVENT_CONTENT_TYPE
from gateway.store.outbox import OutboxItem
from normalizer.contract import Channel
from router.broker import connect, topology_for
from router.publisher import ConfirmingPublisher, declare_topology
from router.relay import PUBLISH_ERRORS, build_relay
from tests.peers.complaints import outbox_rows, record
from tests.peers.processes import IntakeProcesses, env_for

# (channel, language) of the complaints the routing tests publish.
MIX = [
    (Channel.API, "fr"),
    (Channel.PHONE, "fr"),
    (Channel.PHONE, "ar"),
    (Channel.EMAIL, "fr"),
    (Channel.EMAIL, "ary-Latn"),
    (Channel.WEBFORM, "en"),
]


@pytest.fixture
def services(amqp_settings: Settings) -> Iterator[Services]:
    built = build_services(amqp_settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def broker(amqp_settings: Settings) -> Iterator[Connection]:
    """A connection of the test's own, with the gateway's topology declared."""
    with connect(amqp_settings) as connection:
        declare_topology(connection, topology_for(amqp_settings))
        yield connection


@dataclass(frozen=True)
class Delivery:
    routing_key: str
    message_id: str
    content_type: str
    delivery_mode: int
    body: dict[str, object]


def bind_test_queue(connection: Connection, settings: Settings, pattern: str) -> Queue:
    exchange = topology_for(settings).exchange
    queue = Queue(
        f"{settings.topology_prefix}test.{uuid.uuid4().hex[:8]}",
        exchange=exchange,
        routing_key=pattern,
        exclusive=True,
        durable=False,
    )
    queue.bind(connection.default_channel).declare()
    return queue


def drain(connection: Connection, queue: Queue) -> list[Delivery]:
    """Everything in ``queue`` now (the relay has already had its confirms)."""
    deliveries = []
    bound = queue.bind(connection.default_channel)
    while (message := bound.get(no_ack=True)) is not None:
        deliveries.append(
            Delivery(
                routing_key=message.delivery_info["routing_key"],
                message_id=message.properties["message_id"],
                content_type=message.content_type,
                delivery_mode=message.properties["delivery_mode"],
                body=json.loads(message.body),
            )
        )
    return deliveries


def queue_depth(connection: Connection, name: str) -> int:
    _name, messages, _consumers = connection.default_channel.queue_declare(name, passive=True)
    return int(messages)


def test_relay_delivers_each_complaint_exactly_once_to_a_consumer_process(
    amqp_settings: Settings,
    services: Services,
    broker: Connection,
    intake_processes: IntakeProcesses,
) -> None:
    created = {record(services.store, channel=c, language=lang).message.id for c, lang in MIX}
    env = env_for(amqp_settings)

    relay = intake_processes.run("relay", "--once", env=env)
    consumer = intake_processes.run("consume", "--count", str(len(MIX)), "--timeout", "30", env=env)

    assert relay.popen.returncode == 0, relay.describe()
    assert consumer.popen.returncode == 0, consumer.describe()
    received = Counter(str(event["id"]) for event in consumer.json_lines())
    assert received == Counter(created)  # each one, once
    assert queue_depth(broker, topology_for(amqp_settings).inbound.name) == 0
    # The outbox knows they were confirmed: a second pass sends nothing again.
    assert build_relay(services.settings, services.store).publish_pending().published == 0


def test_routing_key_names_channel_and_language(
    amqp_settings: Settings, services: Services, broker: Connection
) -> None:
    french = bind_test_queue(broker, amqp_settings, "complaint.*.fr")
    phone = bind_test_queue(broker, amqp_settings, "complaint.phone.#")
    expected = {}
    for channel, language in MIX:
        message = record(services.store, channel=channel, language=language).message
        expected[message.id] = f"complaint.{channel.value}.{language}"

    build_relay(services.settings, services.store).publish_pending()

    french_got = {d.message_id: d.routing_key for d in drain(broker, french)}
    phone_got = {d.message_id: d.routing_key for d in drain(broker, phone)}
    assert french_got == {i: key for i, key in expected.items() if key.endswith(".fr")}
    assert phone_got == {i: key for i, key in expected.items() if ".phone." in key}


def test_published_message_is_a_persistent_cloudevent_identified_by_the_complaint_id(
    amqp_settings: Settings, services: Services, broker: Connection
) -> None:
    everything = bind_test_queue(broker, amqp_settings, "complaint.#")
    message = record(services.store, channel=Channel.SMS, language="ary-Arab").message

    build_relay(services.settings, services.store).publish_pending()

    [delivery] = drain(broker, everything)
    assert delivery.routing_key == "complaint.sms.ary-Arab"
    assert delivery.message_id == message.id
    assert delivery.delivery_mode == 2
    assert delivery.content_type == EVENT_CONTENT_TYPE
    assert delivery.body["id"] == message.id
    assert delivery.body["subject"] == message.reference
    assert delivery.body["data"]["id"] == message.id  # type: ignore[index]


def test_unroutable_message_stays_unpublished_until_its_queue_is_bound_again(
    amqp_settings: Settings, services: Services, broker: Connection
) -> None:
    topology = topology_for(amqp_settings)
    relay = build_relay(services.settings, services.store)
    delivered = record(services.store).message.id
    assert relay.publish_pending().published == 1
    # An operator unbinds the complaint queues while the relay runs: with
    # ``mandatory`` the broker returns the message instead of dropping it.
    for queue in topology.queues:
        if queue.exchange.name == topology.exchange.name:
            broker.default_channel.queue_unbind(
                queue.name, topology.exchange.name, queue.routing_key
            )
    returned = record(services.store).message.id

    outcome = relay.publish_pending()

    assert (outcome.published, outcome.complete) == (0, False)
    row = next(row for row in outbox_rows(services.store) if row.event_id == returned)
    assert row.published_at is None
    assert "unroutable" in (row.last_error or "")
    assert services.store.counters.all()[PUBLISH_ERRORS] == 1
    relay.close()

    # A restarted relay declares every queue and binding it promises first.
    assert build_relay(services.settings, services.store).publish_pending().published == 1
    got = [d.message_id for d in drain(broker, topology.inbound)]
    assert got == [delivered, returned]


def test_publisher_fails_only_the_unroutable_message_of_a_batch(
    amqp_settings: Settings, broker: Connection
) -> None:
    topology = topology_for(amqp_settings)
    keys = ["complaint.api.fr", "nobody.listens.here", "complaint.api.en"]
    items = [
        OutboxItem(index, str(uuid.uuid4()), key, b'{"n": %d}' % index, EVENT_CONTENT_TYPE)
        for index, key in enumerate(keys, start=1)
    ]
    publisher = ConfirmingPublisher(connect(amqp_settings), topology, confirm_timeout=5)
    try:
        outcome = publisher.publish(items)
    finally:
        publisher.close()

    assert sorted(outcome.published) == [1, 3]
    assert list(outcome.failed) == [2]
    assert outcome.failed[2].startswith("unroutable")
    assert [d.message_id for d in drain(broker, topology.inbound)] == [
        items[0].event_id,
        items[2].event_id,
    ]
