"""A worker that consumes one queue and polls the store beside it.

The acknowledgement worker and the case worker share this shape: a
consumer loop, one delivery at a time (prefetch 1), that reconnects to the
broker with a growing wait; and a poll in a thread of its own that sends
what the store says is due. The poll never holds the consumer's broker
connection (heartbeats, the delivery in hand), and it ends with the
consumer, after the send it may be in, never starting another.

A subclass names its queue, handles a delivery, and runs one poll pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kombu import Queue
from kombu.message import Message

from config.retry import backoff_delay
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from router.consumer import subscribe

POLL_SECONDS = 1.0
FIRST_BACKOFF = 1.0


class QueueWorker:
    """Consume ``queue()`` until stopped; run ``poll_once`` every ``poll_every`` seconds."""

    name = "worker"
    poll_every = 5.0

    def __init__(self, services: Services, log: logging.Logger) -> None:
        self.services = services
        self.log = log
        # Failures in a row (broker lost, delivery put back), for the wait before the next try.
        self.failures = 0
        self.handled = 0

    def queue(self) -> Queue:
        raise NotImplementedError

    def on_message(self, message: Message, stop: threading.Event) -> None:
        raise NotImplementedError

    def poll_once(self, keep_going: Callable[[], bool]) -> None:
        raise NotImplementedError

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, reconnecting to the broker as needed."""
        self.log.info("%s started", self.name)
        ended = threading.Event()  # the consumer's end, whatever ended it
        poll = threading.Thread(
            target=self._poll, args=(stop, ended), name=f"{self.name}-poll", daemon=True
        )
        poll.start()
        try:
            while not stop.is_set():
                try:
                    self._consume(stop)
                except Exception as exc:  # the broker went away: wait, reconnect
                    self.log.warning(
                        "broker connection lost (%s); reconnecting", type(exc).__name__
                    )
                    self.back_off(stop)
        finally:
            ended.set()
            poll.join()
        self.log.info("%s stopped", self.name)

    def back_off(self, stop: threading.Event) -> None:
        """Wait before the next try, longer after each failure in a row."""
        self.failures += 1
        stop.wait(
            backoff_delay(self.failures, FIRST_BACKOFF, self.services.settings.relay_max_backoff)
        )

    def settled(self) -> None:
        """One delivery done: the failures in a row end."""
        self.failures = 0
        self.handled += 1

    def _consume(self, stop: threading.Event) -> None:
        # The subscription's goodbye is bounded: on a broker gone silent the
        # loop still ends within seconds of ``stop``, and the one delivery it
        # may hold unacknowledged goes back to the queue.
        with subscribe(self.services.settings, self.queue(), prefetch_count=1) as subscription:
            while not stop.is_set():
                message = subscription.get(POLL_SECONDS)
                if message is not None:
                    self.on_message(message, stop)

    def _poll(self, stop: threading.Event, ended: threading.Event) -> None:
        def keep_going() -> bool:
            return not (stop.is_set() or ended.is_set())

        while keep_going():
            try:
                self.poll_once(keep_going)
            except StoreUnavailable:
                self.log.warning("store unavailable: the %s poll waits its next turn", self.name)
            except Exception:  # a bug must not end the poll for the worker's lifetime
                self.log.exception("the %s poll failed", self.name)
            ended.wait(self.poll_every)
