"""The relay's retry delays: doubling from the first, never past the configured maximum.

A relay that retried at once would hammer a broker that just came back; one
whose delay kept growing would leave complaints waiting long after the
broker is back. The relay runs here on the embedded store and broker; while
"the broker is away", its publisher cannot be made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import load_settings
from gateway.lib.services import Services, build_services
from router.publisher import Publisher
from router.relay import Relay, backoff_delay, build_relay
from tests.peers.complaints import record

FIRST = 0.5
CEILING = 8.0  # reached at the 5th failure: 0.5, 1, 2, 4, 8
SAMPLES = 200


def refused() -> Publisher:
    raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(load_settings(data_dir=tmp_path, relay_max_backoff=CEILING))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def relay(services: Services) -> Iterator[Relay]:
    made = build_relay(services.settings, services.store)
    assert (made.policy.first_backoff, made.policy.max_backoff) == (FIRST, CEILING)
    record(services.store)
    try:
        yield made
    finally:
        made.close()


def failing_steps(relay: Relay, count: int) -> list[float]:
    """The delays ``relay`` asks for over ``count`` passes with the broker away."""
    working, relay.publisher_factory = relay.publisher_factory, refused
    try:
        return [relay.step() for _ in range(count)]
    finally:
        relay.publisher_factory = working


def test_delays_double_from_the_first_until_the_maximum() -> None:
    for failures in range(1, 5):
        this = [backoff_delay(failures, FIRST, CEILING) for _ in range(SAMPLES)]
        after = [backoff_delay(failures + 1, FIRST, CEILING) for _ in range(SAMPLES)]
        assert max(this) < min(after), f"no growth after failure {failures}"
    first = [backoff_delay(1, FIRST, CEILING) for _ in range(SAMPLES)]
    assert all(0.8 * FIRST <= delay <= FIRST for delay in first)


@pytest.mark.parametrize("failures", [5, 6, 40, 5000])
def test_delays_stay_at_the_maximum_however_long_the_outage(failures: int) -> None:
    # 5000 failures is two days at a 30 s ceiling; the doubling must not overflow.
    delays = [backoff_delay(failures, FIRST, CEILING) for _ in range(SAMPLES)]
    assert all(0.8 * CEILING <= delay <= CEILING for delay in delays)


def test_the_relay_waits_longer_after_each_failed_pass_up_to_its_maximum(relay: Relay) -> None:
    delays = failing_steps(relay, 8)

    assert all(delay <= CEILING for delay in delays), delays
    assert delays[:5] == sorted(delays[:5]), delays
    assert delays[0] <= FIRST
    assert all(delay >= 0.8 * CEILING for delay in delays[4:]), delays


def test_the_relay_starts_again_from_the_first_delay_after_a_pass_that_worked(
    relay: Relay, services: Services
) -> None:
    failing_steps(relay, 6)
    assert relay.step() == relay.policy.poll_interval  # the broker is back: all published
    assert services.store.outbox.stats().pending == 0
    record(services.store)

    assert failing_steps(relay, 1)[0] <= FIRST
