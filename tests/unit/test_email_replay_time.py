"""A replayed e-mail is dated from its arrival, kept with it when it was quarantined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from channels.email.intake import RECEIVED_AT
from channels.email.replay import arrival_time
from gateway.store.quarantine import QuarantineItem

QUARANTINED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
ARRIVED = datetime(2026, 12, 1, 23, 58, tzinfo=timezone(timedelta(hours=1)))


def item_with(source_ids: dict[str, object]) -> QuarantineItem:
    return QuarantineItem(
        id="q-1",
        channel="email",
        reason_code="too_large",
        reason="the message is too large",
        sha256="0" * 64,
        size=10,
        content_type="message/rfc822",
        stored_at="blob:sha256:" + "0" * 64,
        source_ids=source_ids,
        created_at=QUARANTINED,
        resolved_at=None,
        complaint_id=None,
    )


def test_the_kept_receipt_time_dates_the_replay() -> None:
    assert arrival_time(item_with({RECEIVED_AT: ARRIVED.isoformat()})) == ARRIVED


@pytest.mark.parametrize(
    "kept",
    [{}, {RECEIVED_AT: "not a time"}, {RECEIVED_AT: "2026-12-01T23:58:00"}, {RECEIVED_AT: 5}],
    ids=["kept-before-this-release", "unreadable", "without-zone", "not-text"],
)
def test_without_a_usable_receipt_time_the_quarantine_time_is_used(
    kept: dict[str, object],
) -> None:
    assert arrival_time(item_with(kept)) == QUARANTINED
