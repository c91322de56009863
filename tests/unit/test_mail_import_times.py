"""Received time of imported mail: mbox From line, top Received header, Date, Maildir name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from channels.email.backlog import (
    choose_received_at,
    from_line_time,
    header_times,
    maildir_delivery_time,
)

CASABLANCA = ZoneInfo("Africa/Casablanca")
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"From MAILER-DAEMON Mon Jun  3 11:02:07 2024",
            datetime(2024, 6, 3, 10, 2, 7, tzinfo=UTC),
        ),
        (b"From - Mon Jun 03 11:02:07 2024\r", datetime(2024, 6, 3, 10, 2, 7, tzinfo=UTC)),
        (
            b"From 1801234@xxx Mon Jun 03 11:02:07 +0000 2024",
            datetime(2024, 6, 3, 11, 2, 7, tzinfo=UTC),
        ),
    ],
)
def test_from_line_date_is_read_in_the_local_zone_unless_it_has_one(
    line: bytes, expected: datetime
) -> None:
    assert from_line_time(line, CASABLANCA) == expected


@pytest.mark.parametrize("line", [b"From nobody", b"Subject: From Mon Jun 3", b"From a garbage"])
def test_a_from_line_without_a_date_gives_nothing(line: bytes) -> None:
    assert from_line_time(line, CASABLANCA) is None


def test_the_top_received_header_is_the_hop_into_our_mailbox() -> None:
    raw = (
        b"Received: from mx.cashplus.ma by store.cashplus.ma; Tue, 4 Jun 2024 09:00:05 +0100\r\n"
        b"Received: from mail.example.ma by mx.cashplus.ma;\r\n Tue, 4 Jun 2024 08:59:59 +0100\r\n"
        b"Date: Tue, 4 Jun 2024 07:00:00 +0100\r\n\r\nbody\r\n"
    )
    received, date = header_times(raw)
    assert received == datetime(2024, 6, 4, 8, 0, 5, tzinfo=UTC)
    assert date == datetime(2024, 6, 4, 6, 0, tzinfo=UTC)


def test_a_received_header_without_a_date_is_skipped() -> None:
    raw = b"Received: from somewhere\r\nReceived: by mx; Tue, 4 Jun 2024 09:00:00 +0000\r\n\r\nx"
    assert header_times(raw)[0] == datetime(2024, 6, 4, 9, 0, tzinfo=UTC)


def test_maildir_file_name_gives_the_delivery_time() -> None:
    assert maildir_delivery_time("1717405200.M1P1.host") == datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    assert maildir_delivery_time("not-a-time") is None


def test_the_first_plausible_candidate_wins() -> None:
    candidates = [
        ("mbox From line", None),
        ("Received header", datetime(1970, 1, 1, tzinfo=UTC)),
        ("Date header", datetime(2024, 6, 3, tzinfo=UTC)),
    ]
    assert choose_received_at(candidates, NOW) == (datetime(2024, 6, 3, tzinfo=UTC), "Date header")


def test_a_time_slightly_in_the_future_is_taken_as_now() -> None:
    assert choose_received_at([("Date header", NOW + timedelta(hours=2))], NOW) == (
        NOW,
        "Date header",
    )


def test_a_time_far_in_the_future_is_ignored() -> None:
    assert choose_received_at([("Date header", NOW + timedelta(days=30))], NOW) == (
        NOW,
        "import time",
    )
