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
from enum import StrEnum

from kombu.message import Message
from pydantic import ValidationError

from config.retry import backoff_delay
from gateway.acks.acknowledger import Acknowledger
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from normalizer.contract import ComplaintEvent, read_as_consumer
from router.broker import topology_for
from router.consumer import subscribe

log = logging.getLogger("intake.acks")

POLL_SECONDS = 1.0
FIRST_BACKOFF = 1.0
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


class AckWorker:
    def __init__(
        self,
        services: Services,
        acknowledger: Acknowledger | None = None,
        poller: Acknowledger | None = None,
    ) -> None:
        self.services = services
        self.acknowledger = acknowledger or Acknowledger(services)
        # The poll's own: its sends run in another thread than the consumer's.
        self.poller = poller or Acknowledger(services)
        # Failures in a row (broker lost, delivery put back), for the wait before the next try.
        self.failures = 0
        self.handled = 0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, reconnecting to the broker as needed.

        The poll of due rows runs alongside and ends with it (after the
        send it may be in, never starting another).
        """
        log.info("acknowledgement worker started")
        ended = threading.Event()  # the consumer's end, whatever ended it
        poll = threading.Thread(
            target=self._poll_due, args=(stop, ended), name="ack-poll", daemon=True
        )
        poll.start()
        try:
            while not stop.is_set():
                try:
                    self._consume(stop)
                except Exception as exc:  # the broker went away: wait, reconnect
                    log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)
                    stop.wait(self._next_delay())
        finally:
            ended.set()
            poll.join()
        log.info("acknowledgement worker stopped")

    def _next_delay(self) -> float:
        self.failures += 1
        return backoff_delay(self.failures, FIRST_BACKOFF, self.services.settings.relay_max_backoff)

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

    def _poll_due(self, stop: threading.Event, ended: threading.Event) -> None:
        """Send the due rows of the poll every ``DUE_POLL_SECONDS`` until ``stop`` or ``ended``."""

        def keep_going() -> bool:
            return not (stop.is_set() or ended.is_set())

        while keep_going():
            try:
                self.poller.resend_due(keep_going=keep_going)
            except StoreUnavailable:
                log.warning("store unavailable: deferred acknowledgements wait for the next poll")
            except Exception:  # a bug must not end the poll for the worker's lifetime
                log.exception("the poll of deferred acknowledgements failed")
            ended.wait(DUE_POLL_SECONDS)

    def _on_message(self, message: Message, stop: threading.Event) -> None:
        verdict = judge(self.acknowledger, message.body)
        if verdict is Verdict.DONE:
            message.ack()
            self.failures = 0
            self.handled += 1
        elif verdict is Verdict.POISON:
            message.reject(requeue=False)
        else:
            message.requeue()
            stop.wait(self._next_delay())


def run_worker(services: Services, stop: threading.Event) -> None:
    """The ``Component`` worker: ``intake ack-worker`` and ``intake run`` start it."""
    AckWorker(services).run(stop)
