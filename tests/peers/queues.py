"""What reached the gateway's queues, read the way a downstream consumer would."""

from __future__ import annotations

import json

from kombu import Queue

from config.settings import Settings
from router.broker import connect, topology_for
from router.publisher import declare_topology


def drain(settings: Settings, pick: str) -> list[dict[str, object]]:
    """Every message now in the topology's ``pick`` queue (``inbound``, ``events``...), taken."""
    topology = topology_for(settings)
    queue: Queue = getattr(topology, pick)
    bodies = []
    with connect(settings) as connection:
        declare_topology(connection, topology)
        bound = queue.bind(connection.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            bodies.append(json.loads(message.body))
    return bodies
