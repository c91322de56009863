"""Staff login throttling, one-use login form tokens and trusted browsers.

POST /staff/login -> **form token** (one attempt each) -> **throttle**
(account and address) -> password -> session.

Throttle: failures are counted per account name (known or not, so a lock
says nothing of which names exist) and per client address. The first
``free`` failures cost nothing; each one after that locks the key for
``backoff`` seconds, doubled at each further failure, never more than
``lockout`` seconds. A locked attempt is refused before its password is
checked and is not counted, so a flood does not lengthen the lock. A
success clears the account's count; an address's count is forgotten an
hour after its last failure.

Check and count are one step (``attempt``): an attempt is counted as a
failure *before* its password is checked, in the same write transaction as
the check, and refunded if the password was right (``succeeded``). So
parallel attempts cannot all pass one unlock window: the first one past the
free attempts locks the key for the others before anything is verified.
This holds across processes sharing the store, not just within one: the
transaction is ``BEGIN IMMEDIATE`` on SQLite (one writer at a time) and
takes the rows ``FOR UPDATE`` on PostgreSQL (a second attempt reads the
first one's count once it is committed; two first failures of a key racing
to insert its row are retried).

Against a lockout used to keep a real user out: the lock is temporary
(``lockout`` at most), and a browser that has logged in as that user before
carries a signed "trusted browser" cookie that the account's lock does not
apply to (the address's still does). An attacker guessing a password from
elsewhere locks only the strangers' way in.

Every key is a keyed hash: names tried and addresses are not kept in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.store.db import reading, writing
from gateway.store.tables import StaffLoginThrottleRow, StaffLoginTokenRow

# A login form is good for one attempt within this time.
FORM_TOKEN_AGE = timedelta(hours=1)
# A key's failures are forgotten this long after its last one.
FORGET_AFTER = timedelta(hours=1)
# A trusted-browser cookie lasts this long.
DEVICE_AGE = timedelta(days=90)
# Tries of ``attempt`` when another process inserted a key's row at the same time.
ATTEMPT_TRIES = 3

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoginPolicy:
    # Failures per account name, then per client address, before any back-off.
    account_free: int = 5
    address_free: int = 20
    # First lock (seconds), doubled at each further failure, up to ``lockout``.
    backoff: float = 2.0
    lockout: float = 900.0

    def lock_for(self, failures: int, free: int) -> float:
        """Seconds a key with ``failures`` is locked (0: not locked)."""
        over = failures - free
        if over <= 0:
            return 0.0
        return float(min(self.lockout, self.backoff * 2 ** min(over - 1, 40)))


@dataclass(frozen=True)
class Key:
    value: str
    free: int


@dataclass(frozen=True)
class Attempt:
    """What ``attempt`` decided: refused (``wait`` seconds left) or counted (``locked``)."""

    wait: int = 0  # > 0: refused, the password must not be checked, nothing was counted
    locked: int = 0  # counted as a failure: seconds the worst key is now locked

    @property
    def allowed(self) -> bool:
        return self.wait == 0


class LoginGuard:
    def __init__(
        self, engine: Engine, secret: bytes, policy: LoginPolicy, clock: Clock = _utcnow
    ) -> None:
        self.engine = engine
        self.secret = secret
        self.policy = policy
        self.clock = clock

    def _mac(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    # -- keys -----------------------------------------------------------------
    def account(self, name: str) -> Key:
        return Key(self._mac(f"login-account:{name}"), self.policy.account_free)

    def address(self, address: str) -> Key:
        return Key(self._mac(f"login-address:{address}"), self.policy.address_free)

    # -- throttle -------------------------------------------------------------
    def wait(self, keys: Iterable[Key]) -> int:
        """Whole seconds until every key in ``keys`` is unlocked (0: go ahead)."""
        now = self.clock()
        values = [key.value for key in keys]
        with reading(self.engine) as session:
            rows = session.scalars(
                select(StaffLoginThrottleRow).where(StaffLoginThrottleRow.key.in_(values))
            ).all()
        waits = [
            (row.locked_until - now).total_seconds()
            for row in rows
            if row.locked_until is not None and row.locked_until > now
        ]
        return math.ceil(max(waits)) if waits else 0

    def attempt(self, check: Iterable[Key], count: Iterable[Key]) -> Attempt:
        """Refuse if a key of ``check`` is locked; otherwise count a failure on each of ``count``.

        One write transaction, so parallel attempts (threads or processes) are
        decided one after the other: past the free attempts, one attempt per
        unlock window is allowed, the others are refused uncounted. The caller
        checks the password only when ``allowed``, and calls ``succeeded``
        (with ``refund``) when it was right.
        """
        checked, counted = list(check), list(count)
        for tries_left in range(ATTEMPT_TRIES - 1, -1, -1):
            try:
                with writing(self.engine) as session:
                    return self._attempt(session, checked, counted)
            except IntegrityError:  # another process inserted one of the rows: read it again
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    def _attempt(self, session: Session, checked: list[Key], counted: list[Key]) -> Attempt:
        now = self.clock()
        session.execute(
            delete(StaffLoginThrottleRow).where(
                StaffLoginThrottleRow.last_failure_at < now - FORGET_AFTER
            )
        )
        values = sorted({key.value for key in [*checked, *counted]})  # one lock order
        rows = {
            row.key: row
            for row in session.scalars(
                select(StaffLoginThrottleRow)
                .where(StaffLoginThrottleRow.key.in_(values))
                .order_by(StaffLoginThrottleRow.key)
                .with_for_update()
            )
        }
        waits = [
            (row.locked_until - now).total_seconds()
            for key in checked
            if (row := rows.get(key.value)) is not None
            and row.locked_until is not None
            and row.locked_until > now
        ]
        if waits:
            return Attempt(wait=max(1, math.ceil(max(waits))))
        worst = 0.0
        for key in counted:
            row = rows.get(key.value)
            if row is None:
                row = rows[key.value] = StaffLoginThrottleRow(
                    key=key.value, failures=0, last_failure_at=now
                )
                session.add(row)
            row.failures += 1
            row.last_failure_at = now
            lock = self.policy.lock_for(row.failures, key.free)
            row.locked_until = now + timedelta(seconds=lock) if lock else None
            worst = max(worst, lock)
        session.flush()  # a racing insert fails here, inside the retried transaction
        return Attempt(locked=math.ceil(worst))

    def failed(self, keys: Iterable[Key]) -> int:
        """Count one failure on each key; whole seconds the worst of them is now locked."""
        now = self.clock()
        worst = 0.0
        with writing(self.engine) as session:
            session.execute(
                delete(StaffLoginThrottleRow).where(
                    StaffLoginThrottleRow.last_failure_at < now - FORGET_AFTER
                )
            )
            for key in keys:
                row = session.get(StaffLoginThrottleRow, key.value)
                if row is None:
                    row = StaffLoginThrottleRow(key=key.value, failures=0, last_failure_at=now)
                    session.add(row)
                row.failures += 1
                row.last_failure_at = now
                lock = self.policy.lock_for(row.failures, key.free)
                row.locked_until = now + timedelta(seconds=lock) if lock else None
                worst = max(worst, lock)
        return math.ceil(worst)

    def succeeded(self, key: Key, refund: Iterable[Key] = ()) -> None:
        """A right password: clear ``key``'s count, take back the failure ``attempt`` counted
        on each of ``refund`` (and its lock, if that leaves the key within its free ones)."""
        with writing(self.engine) as session:
            session.execute(
                delete(StaffLoginThrottleRow).where(StaffLoginThrottleRow.key == key.value)
            )
            for other in refund:
                if other.value == key.value:
                    continue
                row = session.get(StaffLoginThrottleRow, other.value, with_for_update=True)
                if row is None:
                    continue
                row.failures = max(0, row.failures - 1)
                if not self.policy.lock_for(row.failures, other.free):
                    row.locked_until = None

    # -- one-use form tokens ----------------------------------------------------
    def form_token(self) -> str:
        issued = int(self.clock().timestamp())
        nonce = secrets.token_urlsafe(18)
        return f"{issued}.{nonce}.{self._mac(f'login-form:{issued}.{nonce}')}"

    def use_form_token(self, token: str) -> bool:
        """True once for a token this process's secret made, within ``FORM_TOKEN_AGE``."""
        try:
            issued_text, nonce, signature = token.split(".")
            issued = datetime.fromtimestamp(int(issued_text), UTC)
        except (ValueError, OverflowError, OSError):
            return False
        expected = self._mac(f"login-form:{issued_text}.{nonce}")
        now = self.clock()
        if not hmac.compare_digest(signature, expected):
            return False
        if not now - FORM_TOKEN_AGE <= issued <= now + timedelta(minutes=1):
            return False
        try:
            with writing(self.engine) as session:
                session.execute(
                    delete(StaffLoginTokenRow).where(StaffLoginTokenRow.expires_at < now)
                )
                session.add(
                    StaffLoginTokenRow(
                        id=hashlib.sha256(nonce.encode()).hexdigest(),
                        expires_at=issued + FORM_TOKEN_AGE,
                    )
                )
        except IntegrityError:
            return False
        return True

    # -- trusted browsers -------------------------------------------------------
    def device_token(self, name: str) -> str:
        issued = int(self.clock().timestamp())
        return f"{issued}.{self._mac(f'login-device:{name}:{issued}')}"

    def trusted(self, token: str, name: str) -> bool:
        """Whether ``token`` is a trusted-browser cookie of ``name`` still in date."""
        try:
            issued_text, signature = token.split(".")
            issued = datetime.fromtimestamp(int(issued_text), UTC)
        except (ValueError, OverflowError, OSError):
            return False
        expected = self._mac(f"login-device:{name}:{issued_text}")
        return hmac.compare_digest(signature, expected) and self.clock() - issued <= DEVICE_AGE
