"""Leader leases on SQLite and PostgreSQL: one holder at a time, takeover after expiry.

The IMAP poller runs only while it holds its mailbox's lease; these tests
check the lease itself against both databases the gateway supports. The
takeover of a killed ``intake imap poll`` is in test_multi_instance.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gateway.store.db import create_store_engine, migrate
from gateway.store.leases import LeaseKeeper, Leases, holder_is_gone, run_as_leader
from tests.peers.processes import wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_store_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_only_one_holder_at_a_time(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("poller:box", "a", ttl=30)
    assert not leases.acquire("poller:box", "b", ttl=30)
    assert leases.acquire("poller:box", "a", ttl=30)  # renewal by the holder


def test_expired_lease_is_taken_over_and_counted(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("poller:box", "a", ttl=1)
    wait_until(lambda: leases.acquire("poller:box", "b", ttl=30), "the lease to expire", timeout=5)
    (state,) = leases.all()
    assert (state.holder, state.epoch) == ("b", 2)


def test_released_lease_is_free_at_once(engine: Engine) -> None:
    leases = Leases(engine)
    assert leases.acquire("poller:box", "a", ttl=60)
    leases.release("poller:box", "a")
    assert leases.acquire("poller:box", "b", ttl=60)


def test_standby_works_only_after_the_holder_stops(engine: Engine) -> None:
    leases = Leases(engine)
    working: list[str] = []
    stops = {name: threading.Event() for name in ("first", "second")}

    def start(name: str) -> threading.Thread:
        keeper = LeaseKeeper(leases, "poller:box", ttl=1.5, holder=name)

        def work(step_down: threading.Event) -> None:
            working.append(name)
            step_down.wait()
            working.remove(name)

        thread = threading.Thread(target=run_as_leader, args=(keeper, work, stops[name]))
        thread.start()
        return thread

    first = start("first")
    wait_until(lambda: working == ["first"], "the first process to lead")
    second = start("second")
    for _ in range(10):  # renewals keep the standby out
        assert working in (["first"], [])
        threading.Event().wait(0.2)
    assert working == ["first"]
    stops["first"].set()
    first.join(10)
    wait_until(lambda: working == ["second"], "the standby to take over", timeout=10)
    stops["second"].set()
    second.join(10)


def test_a_dead_process_of_this_machine_is_gone_and_a_living_one_is_not() -> None:
    import os
    import socket
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    host = socket.gethostname()
    assert holder_is_gone(f"{host}:{child.pid}:abc")
    assert not holder_is_gone(f"{host}:{os.getpid()}:abc")
    assert not holder_is_gone(f"elsewhere.example:{child.pid}:abc")  # unknown: wait for expiry
