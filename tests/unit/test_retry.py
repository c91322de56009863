"""Every retry loop waits by one rule: doubling, capped, never overflowing."""

import pytest

from channels.email.imap.poller import Backoff
from channels.twilio.worker import MAX_BACKOFF_SECONDS, retry_delay
from config.retry import backoff_delay

pytestmark = pytest.mark.unit


def test_delays_double_from_the_first_up_to_the_ceiling() -> None:
    assert [backoff_delay(n, 1.0, 10.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_only_shortens_a_delay() -> None:
    delays = [backoff_delay(3, 1.0, 10.0, jitter=0.5) for _ in range(200)]
    assert all(2.0 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize("failures", [1_025, 5_000, 10**6])
def test_a_long_outage_waits_the_ceiling_and_does_not_overflow(failures: int) -> None:
    assert backoff_delay(failures, 1.0, 60.0) == 60.0
    assert Backoff(first=1.0, ceiling=60.0).delay(failures) <= 60.0
    assert retry_delay(2.0, failures) == MAX_BACKOFF_SECONDS
