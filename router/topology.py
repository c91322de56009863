"""Exchanges, queues and routing keys the gateway promises to downstream systems.

- exchange ``complaints`` (topic, durable): every event the gateway publishes.
- routing key ``complaint.<channel>.<language>`` for complaints, e.g.
  ``complaint.email.ary-Latn``; consumers can bind to a channel or a language.
- queue ``complaints.inbound`` (durable; a quorum queue on RabbitMQ) bound to
  ``complaint.#``: every complaint, the queue most consumers read.
- queue ``complaints.events`` bound to ``event.#``: what is not a complaint
  but matters (``event.email.autoreply``, ``event.call.missed``).
- queue ``complaints.acks`` bound to ``complaint.#``: the acknowledgement
  worker's own copy of every complaint (``intake ack-worker``), so it never
  competes with other consumers of ``complaints.inbound``.
- queue ``complaints.status`` bound to ``status.#``: status reports that case
  handling publishes (``ma.cashplus.complaint.status.v1``), for the case
  worker (``intake case-worker``).
- exchange ``complaints.dlx`` (fanout) and queue ``complaints.dead``: what a
  consumer rejects from ``complaints.inbound`` (or what the acknowledgement
  worker failed ``ACK_DELIVERY_LIMIT`` times) ends there, for inspection and
  replay.

Every queue is declared before anything is published: on kombu's embedded
transports a message sent to an exchange with no bound queue is dropped
without a word.
"""

from __future__ import annotations

from dataclasses import dataclass

from kombu import Exchange, Queue

COMPLAINT_BINDING = "complaint.#"
EVENT_BINDING = "event.#"
STATUS_BINDING = "status.#"
# Deliveries of one complaint to the acknowledgement worker before RabbitMQ
# dead-letters it (quorum queues only): a poison message must not loop
# forever, but an SMTP relay down for hours (retries every 30 s at most)
# must not send acknowledgements to the dead-letter queue either.
ACK_DELIVERY_LIMIT = 1000


@dataclass(frozen=True)
class Topology:
    exchange: Exchange
    dead_letter_exchange: Exchange
    inbound: Queue
    dead_letters: Queue
    events: Queue
    acks: Queue
    status: Queue

    @property
    def queues(self) -> tuple[Queue, ...]:
        return (self.inbound, self.dead_letters, self.events, self.acks, self.status)


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
    acks = Queue(
        f"{prefix}complaints.acks",
        exchange=exchange,
        routing_key=COMPLAINT_BINDING,
        durable=True,
        queue_arguments=(
            {**queue_arguments, "x-delivery-limit": ACK_DELIVERY_LIMIT}
            if quorum
            else dict(queue_arguments)
        ),
    )
    status = Queue(
        f"{prefix}complaints.status",
        exchange=exchange,
        routing_key=STATUS_BINDING,
        durable=True,
        queue_arguments=dict(queue_arguments),
    )
    return Topology(
        exchange=exchange,
        dead_letter_exchange=dlx,
        inbound=inbound,
        dead_letters=dead,
        events=events,
        acks=acks,
        status=status,
    )
