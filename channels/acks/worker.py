"""The acknowledgement worker: consume ``complaints.acks``, acknowledge each complaint.

relay -> exchange ``complaints`` -> queue ``complaints.acks`` (its own, bound
to ``complaint.#``) -> **this loop** -> ``Acknowledger.settle``.

Manual acks: a delivery is acknowledged to the broker only after the
acknowledgement was sent (or refused for good, or given up) and recorded.
What cannot be done now (relay or Twilio down, store down, anything
unexpected) is put back on the queue and the loop waits before the next
one, longer each time. A requeued delivery comes back near the head of the
queue (RabbitMQ quorum queues), so the acknowledger counts the attempts of
each complaint and gives it up after a few (``ack.failed`` published, the
delivery acknowledged): one bad complaint cannot hold the queue.
``ACK_DELIVERY_LIMIT`` stays as the broker's last resort. A body that is
not a complaint event is rejected to the dead-letter queue at once. One
complaint at a time (prefetch 1): a stopped worker leaves nothing
half-done in its hands.

Between deliveries, every ``REOPENED_POLL_SECONDS``, the loop also sends
what ``intake ack retry`` re-opened.
"""

from __future__ import annotations

import logging
import threading
import time
from enum import StrEnum

from kombu.message import Message
from pydantic import ValidationError

from channels.acks.acknowledger import Acknowledger
from gateway.services import Services
from gateway.store import StoreUnavailable
from normalizer.contract import ComplaintEvent
from router.broker import topology_for
from router.consumer import subscribe

log = logging.getLogger("intake.acks")

POLL_SECONDS = 1.0
FIRST_BACKOFF = 1.0
REOPENED_POLL_SECONDS = 5.0


class Verdict(StrEnum):
    DONE = "done"  # ack the delivery
    RETRY = "retry"  # requeue it and wait
    POISON = "poison"  # reject it to the dead-letter queue


def judge(acknowledger: Acknowledger, body: bytes | str) -> Verdict:
    """Acknowledge one complaint from its delivered body; say what to do with the delivery."""
    try:
        complaint = ComplaintEvent.model_validate_json(body).data
    except ValidationError as exc:
        log.error("not a complaint event, sent to the dead-letter queue: %s", exc.error_count())
        return Verdict.POISON
    return Verdict.DONE if acknowledger.settle(complaint) else Verdict.RETRY


class Backoff:
    def __init__(self, maximum: float) -> None:
        self.maximum = maximum
        self.current = 0.0

    def next(self) -> float:
        self.current = min(self.maximum, max(FIRST_BACKOFF, self.current * 2))
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class AckWorker:
    def __init__(self, services: Services, acknowledger: Acknowledger | None = None) -> None:
        self.services = services
        self.acknowledger = acknowledger or Acknowledger(services)
        self.backoff = Backoff(services.settings.relay_max_backoff)
        self.handled = 0
        self.next_reopened_poll = 0.0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, reconnecting to the broker as needed."""
        log.info("acknowledgement worker started")
        while not stop.is_set():
            try:
                self._consume(stop)
            except Exception as exc:  # the broker went away: wait, reconnect
                log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)
                stop.wait(self.backoff.next())
        log.info("acknowledgement worker stopped")

    def _consume(self, stop: threading.Event) -> None:
        settings = self.services.settings
        # The subscription's goodbye is bounded: on a broker gone silent the
        # loop still ends within seconds of ``stop``, and the one delivery it
        # may hold unacknowledged goes back to the queue.
        with subscribe(settings, topology_for(settings).acks, prefetch_count=1) as subscription:
            while not stop.is_set():
                message = subscription.get(POLL_SECONDS)
                if message is not None:
                    self._on_message(message, stop)
                self._resend_reopened()

    def _resend_reopened(self) -> None:
        if time.monotonic() < self.next_reopened_poll:
            return
        self.next_reopened_poll = time.monotonic() + REOPENED_POLL_SECONDS
        try:
            self.acknowledger.resend_reopened()
        except StoreUnavailable:
            log.warning("store unavailable: re-opened acknowledgements wait for the next poll")

    def _on_message(self, message: Message, stop: threading.Event) -> None:
        verdict = judge(self.acknowledger, message.body)
        if verdict is Verdict.DONE:
            message.ack()
            self.backoff.reset()
            self.handled += 1
        elif verdict is Verdict.POISON:
            message.reject(requeue=False)
        else:
            message.requeue()
            stop.wait(self.backoff.next())


def run_worker(services: Services, stop: threading.Event) -> None:
    """The ``ChannelAdapter`` worker: ``intake ack-worker`` and ``intake run`` start it."""
    AckWorker(services).run(stop)
