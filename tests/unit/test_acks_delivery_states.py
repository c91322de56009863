"""The delivery states Twilio and bounces report move forward only, and failures are final."""

from __future__ import annotations

import pytest

from gateway.store.deliveries import advances, delivery_class


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("queued", "sent"),
        ("queued", "delivered"),  # Twilio may skip a step
        ("sent", "undelivered"),
        ("sent", "failed"),
        ("delivered", "read"),
    ],
)
def test_a_later_state_is_news(current: str, new: str) -> None:
    assert advances(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("delivered", "sent"),  # a late callback
        ("sent", "sent"),  # a repeated one
        ("delivered", "undelivered"),
        ("undelivered", "delivered"),
        ("undelivered", "failed"),
        ("failed", "read"),
        ("sent", "receiving"),  # not a state of an outgoing message
    ],
)
def test_an_earlier_repeated_or_unknown_state_changes_nothing(current: str, new: str) -> None:
    assert not advances(current, new)


def test_the_report_classes() -> None:
    assert [delivery_class(s) for s in ("queued", "sent", "read", "failed")] == [
        "pending",
        "pending",
        "delivered",
        "undelivered",
    ]
