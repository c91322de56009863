from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from normalizer.deadlines import compute_deadlines, local_receipt_date

CASABLANCA = ZoneInfo("Africa/Casablanca")


def test_deadlines_end_at_the_last_second_of_the_local_day() -> None:
    received = datetime(2026, 11, 26, 9, 30, tzinfo=CASABLANCA)
    deadlines = compute_deadlines(received)
    assert deadlines.ack_due_at == datetime(2026, 12, 6, 23, 59, 59, tzinfo=CASABLANCA)
    assert deadlines.answer_due_at == datetime(2027, 1, 5, 23, 59, 59, tzinfo=CASABLANCA)


def test_complaint_just_before_local_midnight_counts_from_that_local_day() -> None:
    # 23:30 in Casablanca (UTC+1) is 22:30 UTC the same day.
    received = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)
    assert local_receipt_date(received) == datetime(2026, 11, 26).date()
    assert compute_deadlines(received).ack_due_at.date() == datetime(2026, 12, 6).date()


def test_complaint_just_after_local_midnight_is_next_day_although_utc_is_not() -> None:
    # 00:10 local on 27 Nov is still 26 Nov in UTC.
    received = datetime(2026, 11, 26, 23, 10, tzinfo=UTC)
    assert local_receipt_date(received) == datetime(2026, 11, 27).date()
    assert compute_deadlines(received).ack_due_at.date() == datetime(2026, 12, 7).date()


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    assert offset is not None
    return offset


def test_deadline_across_the_ramadan_offset_change_keeps_local_end_of_day() -> None:
    # Morocco switches from UTC+1 to UTC+0 for Ramadan (mid-February 2026).
    received = datetime(2026, 2, 10, 12, 0, tzinfo=CASABLANCA)
    deadlines = compute_deadlines(received)
    assert _offset(received) == timedelta(hours=1)
    assert _offset(deadlines.ack_due_at) == timedelta(0)
    assert deadlines.ack_due_at == datetime(2026, 2, 20, 23, 59, 59, tzinfo=CASABLANCA)
    assert deadlines.ack_due_at.astimezone(UTC) == datetime(2026, 2, 20, 23, 59, 59, tzinfo=UTC)


def test_before_midnight_during_ramadan_uses_utc_plus_zero() -> None:
    # During Ramadan 23:30 UTC is 23:30 local: still the same day.
    received = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert local_receipt_date(received) == datetime(2026, 3, 1).date()
    # Outside Ramadan the same UTC time is already the next local day.
    assert (
        local_receipt_date(datetime(2026, 4, 1, 23, 30, tzinfo=UTC)) == datetime(2026, 4, 2).date()
    )


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        compute_deadlines(datetime(2026, 1, 1, 12, 0))
