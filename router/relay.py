"""The outbox relay: moves committed messages from the store to the broker.

Loop: claim a batch of pending rows in order, publish it, mark as published
only the rows the broker confirmed (and this relay still holds). Several
relays may run, one per instance: each claims its own batches
(``Outbox.claim``), so no row is published by two of them, and a relay
killed mid-batch leaves rows that another one takes once the claim lapses.
When the broker is away the relay backs off (exponentially, with a cap) and
logs the outage once when it starts and once when it ends, not once per
message nor once per pass. A broker that refuses or drops the connection
and one that stays silent (its confirms never come) are the same outage to
an operator, and are logged the same way. A message larger than the broker
accepts is held with the reason instead of being retried forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from config import retry
from config.settings import Settings
from gateway.store import Store, StoreUnavailable
from gateway.store.leases import process_identity
from gateway.store.outbox import Counters, Outbox, OutboxItem
from router.broker import connect, topology_for
from router.publisher import Publisher, make_publisher

log = logging.getLogger("intake.relay")

PUBLISHED = "relay_published_total"
PUBLISH_ERRORS = "relay_publish_errors_total"
HELD = "relay_held_total"


@dataclass(frozen=True)
class RelayPolicy:
    batch_size: int = 200
    poll_interval: float = 0.5
    first_backoff: float = 0.5
    max_backoff: float = 30.0
    max_message_bytes: int = 16 * 1024 * 1024
    # How long a claimed batch stays this relay's: longer than a publish with
    # its confirm timeout, short enough that a dead relay's rows move on soon.
    claim_seconds: float = 60.0


@dataclass(frozen=True)
class PassResult:
    published: int
    complete: bool
    # Why the pass stopped short (messages the broker did not confirm), for the outage log.
    problem: str | None = None


def backoff_delay(failures: int, first: float, ceiling: float) -> float:
    """Seconds to wait after the ``failures``-th failed pass in a row (n >= 1).

    Jitter down to 80 % keeps several relays from retrying in step.
    """
    return retry.backoff_delay(failures, first, ceiling, jitter=0.2)


def unconfirmed_problem(failed: dict[int, str]) -> str:
    """One line for messages the broker did not confirm: how many, and the first reason."""
    reason = next(iter(failed.values()))
    return f"{len(failed)} message(s) not confirmed: {reason}"


class Relay:
    def __init__(
        self,
        outbox: Outbox,
        counters: Counters,
        publisher_factory: Callable[[], Publisher],
        policy: RelayPolicy,
        owner: str | None = None,
        *,
        periodic: Callable[[], object] | None = None,
    ) -> None:
        """``periodic``: a small job run before each pass (the evidence log's daily root)."""
        self.owner = owner or process_identity()
        self.periodic = periodic
        self.outbox = outbox
        self.counters = counters
        self.publisher_factory = publisher_factory
        self.policy = policy
        self._publisher: Publisher | None = None
        self._failures = 0
        self._outage_started: float | None = None
        self._outage_of = "broker"
        # Messages this relay had confirmed by the broker since it was built.
        self.published = 0

    # -- one pass ---------------------------------------------------------
    def publish_pending(self) -> PassResult:
        """Publish everything pending now.

        Raises the broker's error if a batch could not be published at all,
        after recording it on the rows.
        """
        total = 0
        while True:
            batch = self.outbox.claim(self.policy.batch_size, self.owner, self.policy.claim_seconds)
            if not batch:
                return PassResult(published=total, complete=True)
            publishable = self._hold_oversized(batch)
            confirmed, failed = self._publish_batch(publishable) if publishable else (0, {})
            total += confirmed
            if failed:
                # The rest waits for the next pass, after a backoff: retrying
                # at once would hammer a broker that just refused.
                return PassResult(total, complete=False, problem=unconfirmed_problem(failed))

    def _hold_oversized(self, batch: list[OutboxItem]) -> list[OutboxItem]:
        keep = []
        for item in batch:
            if len(item.payload) > self.policy.max_message_bytes:
                reason = (
                    f"message of {len(item.payload)} bytes exceeds the broker limit "
                    f"of {self.policy.max_message_bytes}"
                )
                log.error("holding outbox row %s (%s): %s", item.id, item.event_id, reason)
                self.outbox.record_failure([item.id], reason, hold=True, owner=self.owner)
                self.counters.add(HELD)
            else:
                keep.append(item)
        return keep

    def _publish_batch(self, batch: list[OutboxItem]) -> tuple[int, dict[int, str]]:
        """Publish one batch; returns how many were confirmed, and the rows to retry.

        Rows to retry are the ones the broker did not confirm (timeout, nack,
        unroutable), with the reason; ``step`` logs them as an outage.
        """
        try:
            publisher = self._ensure_publisher()
            outcome = publisher.publish(batch)
        except Exception as exc:
            self._drop_publisher()
            self.outbox.record_failure(
                [item.id for item in batch], f"{type(exc).__name__}: {exc}", owner=self.owner
            )
            self.counters.add(PUBLISH_ERRORS, len(batch))
            raise
        marked = self.outbox.mark_published(outcome.published, owner=self.owner)
        if marked < len(outcome.published):
            # Our claim lapsed mid-publish and another relay took the rows:
            # it publishes them too; consumers drop the repeat by event id.
            log.warning(
                "%d confirmed message(s) had been claimed by another relay meanwhile",
                len(outcome.published) - marked,
            )
        if outcome.published:
            self.counters.add(PUBLISHED, len(outcome.published))
            self.published += len(outcome.published)
        for outbox_id, reason in outcome.held.items():
            # The broker refused it for good (too large): retrying cannot help.
            log.error("holding outbox row %s: %s", outbox_id, reason)
            self.outbox.record_failure([outbox_id], reason, hold=True, owner=self.owner)
            self.counters.add(HELD)
        settled = {*outcome.published, *outcome.held}
        failed = {
            item.id: outcome.failed.get(item.id, "no answer from the broker")
            for item in batch
            if item.id not in settled
        }
        if failed:
            for outbox_id, reason in failed.items():
                self.outbox.record_failure([outbox_id], reason, owner=self.owner)
            self.counters.add(PUBLISH_ERRORS, len(failed))
        return len(outcome.published), failed

    def _ensure_publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = self.publisher_factory()
        return self._publisher

    def _drop_publisher(self) -> None:
        if self._publisher is not None:
            try:
                self._publisher.close()
            except Exception as exc:
                log.debug("closing publisher: %s", exc)
        self._publisher = None

    # -- the loop ---------------------------------------------------------
    def step(self) -> float:
        """One pass; returns how long to wait before the next one."""
        self._run_periodic()
        try:
            result = self.publish_pending()
        except StoreUnavailable as exc:
            # The outbox's own database failing is not the broker's fault: say which.
            # The store words it as the database's error ("OperationalError: ...").
            return self._on_failure("store", str(exc))
        except Exception as exc:
            return self._on_failure("broker", f"{type(exc).__name__}: {exc}")
        if not result.complete:
            # A silent broker raises nothing: its confirms just never come.
            return self._on_failure("broker", result.problem or "messages not confirmed")
        self._on_success()
        return self.policy.poll_interval

    def _run_periodic(self) -> None:
        """The periodic job, its failure logged and left for the next pass."""
        if self.periodic is None:
            return
        try:
            self.periodic()
        except Exception as exc:
            log.warning(
                "periodic job failed (%s: %s); tried again next pass", type(exc).__name__, exc
            )

    def _on_failure(self, culprit: str, problem: str) -> float:
        """Count a failed pass; log it only if it starts an outage. Returns the delay."""
        self._failures += 1
        if self._outage_started is None:
            self._outage_started = time.monotonic()
            self._outage_of = culprit
            log.warning(
                "%s unavailable (%s); messages stay in the outbox, retrying with backoff",
                culprit,
                problem,
            )
        else:
            log.debug("%s still unavailable (%s)", self._outage_of, problem)
        return backoff_delay(self._failures, self.policy.first_backoff, self.policy.max_backoff)

    def _on_success(self) -> None:
        if self._outage_started is not None:
            log.warning(
                "%s reachable again after %.1f s and %d failed attempt(s)",
                self._outage_of,
                time.monotonic() - self._outage_started,
                self._failures,
            )
        self._outage_started = None
        self._failures = 0

    def run(self, stop: threading.Event) -> None:
        log.info("relay %s started", self.owner)
        try:
            while not stop.is_set():
                stop.wait(self.step())
        finally:
            self._drop_publisher()
            log.info("relay stopped")

    def close(self) -> None:
        self._drop_publisher()


def build_relay(settings: Settings, store: Store) -> Relay:
    """The relay of this process: the store's outbox to the broker the settings name."""
    topology = topology_for(settings)

    def publisher() -> Publisher:
        return make_publisher(connect(settings), topology, settings.confirm_timeout)

    return Relay(
        store.outbox,
        store.counters,
        publisher,
        RelayPolicy(
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            max_backoff=settings.relay_max_backoff,
            max_message_bytes=settings.max_message_bytes,
            claim_seconds=max(settings.relay_lease_seconds, 2 * settings.confirm_timeout),
        ),
        # Yesterday's evidence root, once (its day is the event's dedup key).
        periodic=store.evidence.publish_due_root,
    )
