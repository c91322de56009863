"""The IMAP poller: stay connected to the inbox, sync, wait, reconnect after failures.

IMAP inbox -> **poller** (connection -> InboxSync -> wait) -> captures (a runner normalizes them).
Started by ``intake run`` when ``INTAKE_IMAP_HOST`` is set, and by the
Procfile's ``imap: intake imap poll``. One poller per mailbox is active at a
time: ``run_poller`` works only while it holds the mailbox's leader lease
(``gateway.store.leases``); another instance's poller stands by and takes
over within ``INTAKE_LEADER_LEASE_SECONDS`` when the active one dies.

Failures, in one table: a network error, a refused login, the store down or
a bug all end the session; the poller logs the outage once, backs off
(exponential, capped, with jitter) and reconnects, which starts with a full
resync. Messages that were not committed are still in the inbox then.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from channels.email.imap.connection import (
    NETWORK_ERRORS,
    ImapConfigError,
    TokenProvider,
    close_quietly,
    command_token,
    mailbox_name,
    open_session,
)
from channels.email.imap.outcomes import OUR_FAILURES, Tally
from channels.email.imap.sync import InboxSync
from channels.email.imap.waiting import Wakeup, wait_for_mail
from config.retry import backoff_delay
from gateway.lib.services import Services

log = logging.getLogger("intake.imap")

# What ended a session, from the most to the least specific, and how it is told.
FAILURES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    (OUR_FAILURES, "the store or the normalizer failed; messages stay in the inbox"),
    ((ImapConfigError,), "the IMAP settings do not work (login, token, TLS or folders)"),
    (NETWORK_ERRORS, "the IMAP server is unreachable, dropped the connection or refused a command"),
    ((Exception,), "unexpected error in the IMAP poller"),
)


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0
    ceiling: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the n-th failure in a row (n >= 1)."""
        # Jitter: pollers of several mailboxes do not retry in step.
        return backoff_delay(failures, self.first, self.ceiling, jitter=0.5)


class Outage:
    """Logs the first failure of an outage and the recovery, not every retry."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.since = 0.0
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        kind = _describe(exc)
        self.failures += 1
        if kind != self.kind:
            self.kind, self.since = kind, time.monotonic()
            log.error(
                "%s (%s: %s); retrying with backoff",
                kind,
                type(exc).__name__,
                exc,
                exc_info=kind == FAILURES[-1][1],
            )
        else:
            log.debug("still failing: %s", type(exc).__name__)

    def recovered(self) -> None:
        if self.kind is not None:
            log.warning(
                "IMAP poller working again after %.0f s and %d failure(s)",
                time.monotonic() - self.since,
                self.failures,
            )
        self.kind, self.failures = None, 0


def _describe(exc: BaseException) -> str:
    for kinds, text in FAILURES:
        if isinstance(exc, kinds):
            return text
    return FAILURES[-1][1]


class ImapPoller:
    def __init__(
        self,
        services: Services,
        stop: threading.Event,
        *,
        token_provider: TokenProvider = command_token,
        backoff: Backoff | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.stop = stop
        self.token_provider = token_provider
        self.backoff = backoff or Backoff()
        self.outage = Outage()

    def run(self) -> None:
        """Until ``stop`` is set: connect, sync, wait for mail; back off after failures."""
        log.info(
            "IMAP poller for folder %s on %s:%s",
            self.settings.imap_folder,
            self.settings.imap_host,
            self.settings.imap_port,
        )
        while not self.stop.is_set():
            try:
                self._session()
            except Exception as exc:
                self.outage.failed(exc)
                self.stop.wait(self.backoff.delay(self.outage.failures))
        log.info("IMAP poller stopped")

    def _session(self) -> None:
        client = open_session(self.settings, self.token_provider)
        try:
            sync = InboxSync(self.services, client, self.stop)
            # Every (re)connect starts with a full resync: IDLE is only a hint.
            sync.run(full=True)
            self.outage.recovered()
            last_full = time.monotonic()
            while not self.stop.is_set():
                woke = wait_for_mail(
                    client,
                    self.stop,
                    idle_seconds=self.settings.imap_idle_seconds,
                    poll_interval=self.settings.imap_poll_interval,
                )
                if woke is Wakeup.STOP:
                    return
                full = time.monotonic() - last_full >= self.settings.imap_idle_seconds
                sync.run(full=full)
                if full:
                    last_full = time.monotonic()
        finally:
            close_quietly(client)


def run_poller(services: Services, stop: threading.Event) -> None:
    """The channel worker: ``(services, stop)``, returns soon after ``stop`` is set."""
    from gateway.store.leases import LeaseKeeper, run_as_leader

    settings = services.settings
    # Keyed like the checkpoint: the lease and the checkpoint guard the same mailbox.
    name = f"poller:{mailbox_name(settings).key}"
    keeper = LeaseKeeper(services.store.leases, name, settings.leader_lease_seconds)
    run_as_leader(keeper, lambda step_down: ImapPoller(services, step_down).run(), stop)


def poll_once(services: Services, token_provider: TokenProvider = command_token) -> Tally:
    """One full resync of the inbox, then log out; failures propagate to the caller."""
    client = open_session(services.settings, token_provider)
    try:
        return InboxSync(services, client, threading.Event()).run(full=True)
    finally:
        close_quietly(client)
