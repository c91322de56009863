"""Staff login throttling, one-use form tokens, trusted browsers and idle sessions, on a clock.

The clock is injected: the back-off doubles, stops at the lockout, ends when
it says and is forgotten after an hour, without a test ever waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.store.db import create_store_engine, migrate
from gateway.store.staff import StaffAccounts, UnknownRole
from gateway.store.staff_logins import FORM_TOKEN_AGE, Attempt, LoginGuard, LoginPolicy

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    created = create_store_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    migrate(created)
    yield created
    created.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(engine: Engine, clock: Clock) -> LoginGuard:
    policy = LoginPolicy(account_free=3, address_free=10, backoff=2.0, lockout=60.0)
    return LoginGuard(engine, SECRET, policy, clock)


def test_failures_beyond_the_free_ones_lock_with_a_doubling_back_off(
    guard: LoginGuard, clock: Clock
) -> None:
    key = guard.account("amina")
    assert [guard.failed([key]) for _ in range(3)] == [0, 0, 0]
    assert guard.wait([key]) == 0
    assert guard.failed([key]) == 2
    assert guard.wait([key]) == 2
    clock.advance(2)
    assert guard.wait([key]) == 0
    assert [guard.failed([key]) for _ in range(5)] == [4, 8, 16, 32, 60]  # capped at the lockout
    clock.advance(59)
    assert guard.wait([key]) == 1
    clock.advance(1)
    assert guard.wait([key]) == 0


def test_a_success_clears_the_account_and_an_hour_forgets_the_rest(
    guard: LoginGuard, clock: Clock
) -> None:
    account, address = guard.account("amina"), guard.address("192.0.2.7")
    for _ in range(5):
        guard.failed([account, address])
    guard.succeeded(account)
    assert guard.wait([account]) == 0
    assert guard.failed([account]) == 0  # counting starts again
    clock.advance(3601)
    guard.failed([guard.account("someone")])  # any failure clears forgotten rows
    assert [guard.failed([address]) for _ in range(10)][-1] == 0


def test_a_login_form_token_is_used_once_and_expires(guard: LoginGuard, clock: Clock) -> None:
    token = guard.form_token()
    assert guard.use_form_token(token)
    assert not guard.use_form_token(token)
    stale = guard.form_token()
    clock.advance(FORM_TOKEN_AGE.total_seconds() + 1)
    assert not guard.use_form_token(stale)
    assert not guard.use_form_token("1.forged.0000")
    assert not guard.use_form_token("not a token")


def test_a_trusted_browser_cookie_is_bound_to_its_user(guard: LoginGuard) -> None:
    cookie = guard.device_token("amina")
    assert guard.trusted(cookie, "amina")
    assert not guard.trusted(cookie, "karim")
    assert not guard.trusted("", "amina")


def test_a_session_ends_after_the_idle_timeout_but_not_before(engine: Engine, clock: Clock) -> None:
    accounts = StaffAccounts(engine, SECRET, max_age=8 * 3600, idle_timeout=1800, clock=clock)
    user = accounts.add("amina", "courrier-2026-casa", "mailroom")
    token, _session = accounts.open_session(user)
    for _ in range(4):  # used every 20 minutes: alive after 80 minutes
        clock.advance(1200)
        assert accounts.session_for(token) is not None
    clock.advance(1801)
    assert accounts.session_for(token) is None


def test_roles_are_checked_and_a_role_change_ends_sessions(engine: Engine, clock: Clock) -> None:
    accounts = StaffAccounts(engine, SECRET, max_age=3600, idle_timeout=1800, clock=clock)
    with pytest.raises(UnknownRole):
        accounts.add("x", "courrier-2026-casa", "root")
    user = accounts.add("amina", "courrier-2026-casa", "mailroom")
    token, _ = accounts.open_session(user)
    assert accounts.set_role("amina", "operator") == "mailroom"
    assert accounts.session_for(token) is None
    renewed = accounts.authenticate("amina", "courrier-2026-casa")
    assert renewed is not None and renewed.role == "operator"


def test_parallel_guesses_past_the_free_ones_get_one_evaluation_per_unlock_window(
    guard: LoginGuard, clock: Clock
) -> None:
    """Finding S6: the check and the count are one step, so a burst cannot all pass.

    Eight attempts decided before any of them has checked its password (the
    interleaving of a parallel burst): past the free ones, only the first is
    let through each unlock window; the others are refused and not counted.
    """
    account, address = guard.account("amina"), guard.address("192.0.2.7")
    keys = [account, address]

    def burst(size: int) -> list[Attempt]:
        return [guard.attempt(keys, keys) for _ in range(size)]  # none answered yet

    free = burst(3)
    assert [item.allowed for item in free] == [True] * 3
    first = burst(8)
    assert [item.allowed for item in first] == [True] + [False] * 7
    assert first[0].locked == 2  # the one let through locked the others out at once
    assert {item.wait for item in first[1:]} == {2}
    clock.advance(2)
    second = burst(8)
    assert [item.allowed for item in second] == [True] + [False] * 7
    assert second[0].locked == 4  # refused attempts were not counted: 5th failure, not 12th


def test_parallel_guesses_in_threads_get_one_evaluation_per_unlock_window(
    guard: LoginGuard, clock: Clock
) -> None:
    """The same burst from threads at once (as the web server's pool runs them)."""
    account, address = guard.account("amina"), guard.address("192.0.2.7")
    for _ in range(3):
        guard.failed([account, address])
    size = 12
    start = threading.Barrier(size)

    def one(_: int) -> Attempt:
        start.wait(timeout=30)
        return guard.attempt([account, address], [account, address])

    for window in range(3):
        with ThreadPoolExecutor(size) as pool:
            answers = list(pool.map(one, range(size)))
        assert sum(item.allowed for item in answers) == 1, window
        clock.advance(max(item.wait for item in answers))


def test_a_right_password_refunds_the_counted_attempt(guard: LoginGuard) -> None:
    account, address = guard.account("amina"), guard.address("192.0.2.7")
    for _ in range(10):  # the address at its free attempts, unlocked
        guard.failed([address])
    attempt = guard.attempt([account, address], [account, address])
    assert (attempt.allowed, attempt.locked) == (True, 2)
    guard.succeeded(account, [address])
    assert guard.wait([account, address]) == 0  # the address's lock went with the refund
    assert guard.failed([address]) == 2  # back at 10: the next failure is the 11th
