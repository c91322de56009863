"""The simplest downstream consumer: read the inbound queue, hand each body over, ack.

Used by ``intake consume`` and by the tests; a real consumer does the same
with its own processing in place of ``handle``. It declares the same
topology as the relay, so it can start first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from queue import Empty

from config.settings import Settings
from router.broker import connect, topology_for
from router.publisher import declare_topology

_POLL = 1.0


class BrokerUnavailable(Exception):
    """The broker could not be reached."""


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
    with connect(settings) as connection:
        try:
            connection.ensure_connection(max_retries=3)
        except Exception as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        declare_topology(connection, topology)
        with connection.SimpleQueue(queue) as simple:
            last = time.monotonic()
            while count is None or received < count:
                wait = _POLL if timeout is None else min(_POLL, max(0.0, timeout))
                try:
                    message = simple.get(block=True, timeout=wait)
                except Empty:
                    if timeout is not None and time.monotonic() - last >= timeout:
                        break
                    continue
                body = message.body
                handle(body.decode("utf-8") if isinstance(body, bytes) else str(body))
                message.ack()
                received += 1
                last = time.monotonic()
    return received
