"""The acknowledgement worker: consume ``complaints.acks``, acknowledge each complaint.

relay -> exchange ``complaints`` -> queue ``complaints.acks`` (its own, bound
to ``complaint.#``) -> **this loop** -> ``Acknowledger.settle``.

Manual acks: a delivery is acknowledged to the broker only after the
acknowledgement was sent (or refused for good, or left to the poll) and
recorded. What cannot be done now (relay or Twilio down, store down,
anything unexpected) is put back on the queue and the loop waits before the
next one, longer each time. A requeued delivery comes back near the head
of the queue (RabbitMQ quorum queues), so the acknowledger counts the
attempts of each complaint and after a few takes it off the queue (the
delivery acknowledged; the row deferred, tried again later by the poll
below, and failed with ``ack.failed`` only when its last try before the
deadline fails): one bad complaint cannot hold the queue.
``ACK_DELIVERY_LIMIT`` stays as the broker's last resort. A body that is
not a complaint event is rejected to the dead-letter queue at once. One
complaint at a time (prefetch 1): a stopped worker leaves nothing
half-done in its hands.

The poll runs in a thread of its own, every ``DUE_POLL_SECONDS``, with its
own ``Acknowledger`` (its own senders): it sends the deferred rows that are
due and what ``intake ack retry`` re-opened or brought forward. Sends
there, slow as they may be on a stuck relay, never keep the consumer from
its broker connection (heartbeats, the delivery it holds).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

from kombu import Queue
from kombu.message import Message
from pydantic import ValidationError

from gateway.acks.acknowledger import Acknowledger
from gateway.lib.queue_worker import QueueWorker
from gateway.lib.services import Services
from normalizer.contract import ComplaintEvent, read_as_consumer
from router.broker import topology_for

log = logging.getLogger("intake.acks")

DUE_POLL_SECONDS = 5.0


class Verdict(StrEnum):
    DONE = "done"  # ack the delivery
    RETRY = "retry"  # requeue it and wait
    POISON = "poison"  # reject it to the dead-letter queue


def judge(acknowledger: Acknowledger, body: bytes | str) -> Verdict:
    """Acknowledge one complaint from its delivered body; say what to do with the delivery."""
    try:
        complaint = read_as_consumer(ComplaintEvent, body).data
    except ValidationError as exc:
        log.error("not a complaint event, sent to the dead-letter queue: %s", exc.error_count())
        return Verdict.POISON
    return Verdict.DONE if acknowledger.settle(complaint) else Verdict.RETRY


class AckWorker(QueueWorker):
    name = "acknowledgement worker"
    poll_every = DUE_POLL_SECONDS

    def __init__(
        self,
        services: Services,
        acknowledger: Acknowledger | None = None,
        poller: Acknowledger | None = None,
    ) -> None:
        super().__init__(services, log)
        self.acknowledger = acknowledger or Acknowledger(services)
        # The poll's own: its sends run in another thread than the consumer's.
        self.poller = poller or Acknowledger(services)

    def queue(self) -> Queue:
        return topology_for(self.services.settings).acks

    def poll_once(self, keep_going: Callable[[], bool]) -> None:
        """Send the deferred rows that are due (the poll's turn)."""
        self.poller.resend_due(keep_going=keep_going)

    def on_message(self, message: Message, stop: threading.Event) -> None:
        verdict = judge(self.acknowledger, message.body)
        if verdict is Verdict.DONE:
            message.ack()
            self.settled()
        elif verdict is Verdict.POISON:
            message.reject(requeue=False)
        else:
            message.requeue()
            self.back_off(stop)


def run_worker(services: Services, stop: threading.Event) -> None:
    """The ``Component`` worker: ``intake ack-worker`` and ``intake run`` start it."""
    AckWorker(services).run(stop)
