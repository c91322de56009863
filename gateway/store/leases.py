"""Leader leases: exactly one process at a time does a job that must stay single.

Several instances -> **leases** table (one row per job, e.g. one IMAP
mailbox) -> the holder works, renews its lease every third of its length;
a standby polls and takes the lease over once it has expired, i.e. within
``ttl`` seconds of the holder's death (SIGKILL, lost machine).

A row rather than a PostgreSQL advisory lock: it works the same on SQLite
(embedded mode) and PostgreSQL, it is visible (``/metrics``, the operator
page), and a holder that cannot reach the database stops working before
its lease runs out, because it counts the lease from its own last renewal
(``LeaseKeeper.valid``). Time comes from the database on PostgreSQL, so
machines with skewed clocks still agree on who holds a lease.

The table is declared on the store's ``Base`` so the Alembic migrations see
it (migration 0008).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.store.db import reading, writing
from gateway.store.tables import LeaseRow

log = logging.getLogger("intake.leases")


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str
    expires_at: datetime
    acquired_at: datetime
    epoch: int


def process_identity() -> str:
    """A holder name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def holder_is_gone(holder: str) -> bool:
    """Whether ``holder`` (from ``process_identity``) was a process of this machine that died.

    Holders on other machines are never known to be gone: their claims lapse by time.
    """
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def _database_now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        moment = session.scalar(select(func.now()))
        if isinstance(moment, datetime):
            return moment.astimezone(UTC)
    return datetime.now(UTC)


class Leases:
    """Take, renew, release and list leases; each call is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take (or renew) ``name`` for ``ttl`` seconds if it is free, expired or ours."""
        try:
            with writing(self.engine) as session:
                now = _database_now(session)
                row = session.scalars(
                    select(LeaseRow).where(LeaseRow.name == name).with_for_update()
                ).first()
                until = now + timedelta(seconds=ttl)
                if row is None:
                    session.add(
                        LeaseRow(name=name, holder=holder, expires_at=until, acquired_at=now)
                    )
                    session.flush()
                    return True
                if row.holder == holder:
                    row.expires_at = until
                    return True
                if row.expires_at > now:
                    return False
                row.holder, row.expires_at, row.acquired_at = holder, until, now
                row.epoch += 1
                return True
        except IntegrityError:  # another standby inserted the row first
            return False

    def release(self, name: str, holder: str) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait for expiry.

        The row stays, expired, so its epoch keeps counting takeovers.
        """
        with writing(self.engine) as session:
            session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder)
                .values(expires_at=_database_now(session))
            )

    def all(self) -> list[LeaseState]:
        with reading(self.engine) as session:
            return [
                LeaseState(row.name, row.holder, row.expires_at, row.acquired_at, row.epoch)
                for row in session.scalars(select(LeaseRow).order_by(LeaseRow.name))
            ]


class LeaseKeeper:
    """Holds one lease for this process: acquires, renews in a thread, notices loss.

    A store outage is logged once, not at every renewal: a warning when the
    first attempt fails, debug lines while it lasts, and one info line with
    its length when an attempt reaches the database again.
    """

    def __init__(self, leases: Leases, name: str, ttl: float, holder: str | None = None) -> None:
        self.leases = leases
        self.name = name
        self.ttl = ttl
        self.holder = holder or process_identity()
        self._valid_until = 0.0
        self._unavailable_since: float | None = None  # time.monotonic() of the first failure

    def try_acquire(self) -> bool:
        """Take or renew the lease; False if another process holds it or the store failed.

        A store failure leaves a running lease alone: it still counts until it
        would expire, and ``valid`` turns false then.
        """
        started = time.monotonic()
        try:
            taken = self.leases.acquire(self.name, self.holder, self.ttl)
        except SQLAlchemyError as exc:
            self._note_unavailable(started, exc)
            return False
        self._note_available()
        # Counted from before the call: the database may have stamped it a little later.
        self._valid_until = started + self.ttl if taken else 0.0
        return taken

    def _note_unavailable(self, started: float, exc: SQLAlchemyError) -> None:
        if self._unavailable_since is None:
            self._unavailable_since = started
            log.warning("lease %s: database unavailable (%s)", self.name, type(exc).__name__)
        else:
            log.debug("lease %s: database still unavailable (%s)", self.name, type(exc).__name__)

    def _note_available(self) -> None:
        if self._unavailable_since is not None:
            lasted = time.monotonic() - self._unavailable_since
            self._unavailable_since = None
            log.info("lease %s: database available again after %.1f s", self.name, lasted)

    def valid(self) -> bool:
        """Whether our lease certainly still runs (by our own clock, from the last renewal)."""
        return time.monotonic() < self._valid_until

    def release(self) -> None:
        self._valid_until = 0.0
        try:
            self.leases.release(self.name, self.holder)
        except SQLAlchemyError as exc:
            log.warning("lease %s not released (%s); it expires", self.name, type(exc).__name__)


def run_as_leader(
    keeper: LeaseKeeper,
    work: Callable[[threading.Event], None],
    stop: threading.Event,
    *,
    standby_interval: float | None = None,
) -> None:
    """Run ``work`` only while holding the lease; stand by and take over otherwise.

    ``work`` gets an event that is set when ``stop`` is set or the lease is
    lost (not renewed in time); it must return soon after. Then this process
    stands by again until it can take the lease back.
    """
    interval = standby_interval or max(0.2, keeper.ttl / 5)
    announced = False
    while not stop.is_set():
        if not keeper.try_acquire():
            if not announced:
                log.info("lease %s held by another process: standing by", keeper.name)
                announced = True
            stop.wait(interval)
            continue
        announced = False
        log.info("lease %s taken by %s: active", keeper.name, keeper.holder)
        _work_while_held(keeper, work, stop)
    keeper.release()


def _work_while_held(
    keeper: LeaseKeeper, work: Callable[[threading.Event], None], stop: threading.Event
) -> None:
    step_down = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(keeper, stop, step_down), name=f"lease-{keeper.name}", daemon=True
    )
    renewer.start()
    try:
        work(step_down)
    finally:
        step_down.set()
        renewer.join(keeper.ttl)
    if not stop.is_set():
        log.warning("lease %s lost: this process stopped working and stands by", keeper.name)


def _renew(keeper: LeaseKeeper, stop: threading.Event, step_down: threading.Event) -> None:
    """Renew every third of the lease; set ``step_down`` when stopping or when the lease is gone."""
    while not stop.wait(keeper.ttl / 3) and not step_down.is_set():
        if not keeper.try_acquire() and not keeper.valid():
            break
    step_down.set()
