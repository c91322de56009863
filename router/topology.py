"""Exchanges, queues and routing keys the gateway promises to downstream systems.

- exchange ``complaints`` (topic, durable): every event the gateway publishes.
- routing key ``complaint.<channel>.<language>`` for complaints, e.g.
  ``complaint.email.ary-Latn``; consumers can bind to a channel or a language.
- queue ``complaints.inbound`` (durable; a quorum queue on RabbitMQ) bound to
  ``complaint.#``: every complaint, the queue most consumers read.
- queue ``complaints.events`` bound to ``event.#``: what is not a complaint
  but matters (``event.email.autoreply``, ``event.call.missed``).
- exchange ``complaints.dlx`` (fanout) and queue ``complaints.dead``: what a
  consumer rejects from ``complaints.inbound`` ends there, for inspection and
  replay.

Every queue is declared before anything is published: on kombu's embedded
transports a message sent to an exchange with no bound queue is dropped
without a word.
"""

from __future__ import annotations

from dataclasses import dataclass

from kombu import Exchange, Queue

from normalizer.contract import ComplaintMessage

COMPLAINT_BINDING = "complaint.#"
EVENT_BINDING = "event.#"


@dataclass(frozen=True)
class Topology:
    exchange: Exchange
    dead_letter_exchange: Exchange
    inbound: Queue
    dead_letters: Queue
    events: Queue

    @property
    def queues(self) -> tuple[Queue, ...]:
        return (self.inbound, self.dead_letters, self.events)


def build_topology(prefix: str = "", *, quorum: bool = True) -> Topology:
    """The names and arguments every process must agree on, for a given prefix."""
    exchange = Exchange(f"{prefix}complaints", type="topic", durable=True)
    dlx = Exchange(f"{prefix}complaints.dlx", type="fanout", durable=True)
    queue_arguments: dict[str, object] = {"x-dead-letter-exchange": dlx.name}
    dead_arguments: dict[str, object] = {}
    if quorum:
        queue_arguments["x-queue-type"] = "quorum"
        dead_arguments["x-queue-type"] = "quorum"
    inbound = Queue(
        f"{prefix}complaints.inbound",
        exchange=exchange,
        routing_key=COMPLAINT_BINDING,
        durable=True,
        queue_arguments=queue_arguments,
    )
    dead = Queue(
        f"{prefix}complaints.dead",
        exchange=dlx,
        routing_key="#",
        durable=True,
        queue_arguments=dead_arguments or None,
    )
    events = Queue(
        f"{prefix}complaints.events",
        exchange=exchange,
        routing_key=EVENT_BINDING,
        durable=True,
        queue_arguments=dict(queue_arguments),
    )
    return Topology(
        exchange=exchange,
        dead_letter_exchange=dlx,
        inbound=inbound,
        dead_letters=dead,
        events=events,
    )


def routing_key_for(message: ComplaintMessage) -> str:
    return f"complaint.{message.channel.value}.{message.language.tag}"


def event_routing_key(kind: str) -> str:
    return f"event.{kind}"
