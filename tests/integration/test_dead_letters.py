"""The dead-letter queue on RabbitMQ: look without losing, replay to where it died.

A consumer rejects complaints on ``complaints.inbound`` (``requeue=False``),
RabbitMQ dead-letters them to ``complaints.dead``; ``intake dead-letters``
lists them (they stay), and replays one or all to ``complaints.inbound``
only, not to the other queues bound to the same routing key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kombu import Connection, Producer

from config.settings import Settings
from router.broker import connect, topology_for
from router.deadletters import DeadLetters
from router.publisher import declare_topology
from tests.peers.processes import IntakeProcesses, env_for, wait_until

IDS = ("evt-1", "evt-2", "evt-3")


def depth(connection: Connection, queue: str) -> int:
    return int(connection.default_channel.queue_declare(queue, passive=True).message_count)


@pytest.fixture
def broker(amqp_settings: Settings) -> Iterator[Connection]:
    """Three complaints rejected by a consumer of complaints.inbound (so dead-lettered)."""
    topology = topology_for(amqp_settings)
    with connect(amqp_settings) as connection:
        declare_topology(connection, topology)
        producer = Producer(connection.default_channel, exchange=topology.exchange)
        for number, event_id in enumerate(IDS):
            body = {"id": event_id, "data": {"reference": f"CP-TEST-000{number}"}}
            producer.publish(
                json.dumps(body), routing_key="complaint.email.fr", message_id=event_id
            )
        inbound = topology.inbound.bind(connection.default_channel)
        for _ in IDS:
            # A quorum queue commits through Raft: a message may not be there at once.
            wait_until(lambda: inbound.get(no_ack=False), "a complaint to reject").reject(
                requeue=False
            )
        yield connection


def test_listing_leaves_every_dead_letter_in_the_queue(
    amqp_settings: Settings, broker: Connection
) -> None:
    dead = DeadLetters(amqp_settings)
    first = dead.peek()
    second = dead.peek()
    assert [letter.message_id for letter in first] == list(IDS)
    assert [letter.message_id for letter in second] == list(IDS)
    assert dead.count() == 3
    assert first[0].queue == topology_for(amqp_settings).inbound.name
    assert first[0].reason == "rejected"
    assert first[0].summary["reference"] == "CP-TEST-0000"


def test_replay_returns_a_message_to_the_queue_it_died_in_only(
    amqp_settings: Settings, broker: Connection
) -> None:
    topology = topology_for(amqp_settings)
    acks_before = depth(broker, topology.acks.name)
    outcome = DeadLetters(amqp_settings).replay({"evt-2"})
    assert outcome.replayed == ["evt-2"]
    # The two left alone return to the queue as the channel closes (asynchronously).
    wait_until(lambda: depth(broker, topology.dead_letters.name) == 2, "the others back")
    wait_until(lambda: depth(broker, topology.inbound.name) == 1, "the copy in inbound")
    assert depth(broker, topology.acks.name) == acks_before  # not a second copy for the acks
    message = topology.inbound.bind(broker.default_channel).get(no_ack=True)
    assert message.properties["message_id"] == "evt-2"


def test_cli_lists_then_requeues_all(
    amqp_settings: Settings, broker: Connection, intake_processes: IntakeProcesses
) -> None:
    env = env_for(amqp_settings)
    listing = intake_processes.run("dead-letters", "list", env=env)
    assert listing.popen.returncode == 0, listing.describe()
    assert [line.split("\t")[0] for line in listing.stdout().splitlines()] == list(IDS)
    replay = intake_processes.run("dead-letters", "requeue", "--all", env=env)
    assert replay.popen.returncode == 0, replay.describe()
    topology = topology_for(amqp_settings)
    wait_until(lambda: depth(broker, topology.inbound.name) == 3, "the three copies in inbound")
    assert depth(broker, topology.dead_letters.name) == 0


def test_cli_requeue_of_an_unknown_id_fails_and_moves_nothing(
    amqp_settings: Settings, broker: Connection, intake_processes: IntakeProcesses
) -> None:
    replay = intake_processes.run(
        "dead-letters", "requeue", "no-such-id", env=env_for(amqp_settings)
    )
    assert replay.popen.returncode == 1
    assert "not found" in replay.stderr()
    dead = topology_for(amqp_settings).dead_letters.name
    wait_until(lambda: depth(broker, dead) == 3, "every dead letter back in place")


def test_cli_replay_the_old_name_of_requeue_still_works_and_says_it_is_deprecated(
    amqp_settings: Settings, broker: Connection, intake_processes: IntakeProcesses
) -> None:
    old = intake_processes.run("dead-letters", "replay", "no-such-id", env=env_for(amqp_settings))

    assert old.popen.returncode == 1
    assert "deprecated" in old.stderr().lower()
    assert "no-such-id: not found" in old.stderr()
