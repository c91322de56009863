"""The call centre's hours, holidays and destination: parsed strictly, read in local time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.hours import DialKind, parse_dial, parse_hours
from config.settings import ConfigError, load_settings

ZONE = "Africa/Casablanca"
HOURS = "Mon-Fri 09:00-18:00; Sat 09:00-13:00"


def local(text: str) -> datetime:
    """A Casablanca wall-clock time (UTC+1 outside Ramadan), as an aware UTC datetime."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        ("2026-12-07T09:00", True),  # Monday, opening minute
        ("2026-12-07T08:59", False),
        ("2026-12-07T17:59", True),
        ("2026-12-07T18:00", False),  # closing minute is closed
        ("2026-12-12T12:30", True),  # Saturday morning
        ("2026-12-12T13:30", False),
        ("2026-12-13T10:00", False),  # Sunday
    ],
)
def test_opening_hours_are_read_in_casablanca_time(moment: str, is_open: bool) -> None:
    assert parse_hours(HOURS).is_open(local(moment), ZONE) is is_open


def test_utc_instant_is_converted_before_the_check() -> None:
    # 08:30 UTC is 09:30 in Casablanca (UTC+1): open; a naive reading of UTC would say closed.
    assert parse_hours(HOURS).is_open(datetime(2026, 12, 7, 8, 30, tzinfo=UTC), ZONE)


def test_a_public_holiday_is_closed_all_day() -> None:
    hours = parse_hours(HOURS, "2026-11-18, 2026-01-11")
    assert not hours.is_open(local("2026-11-18T10:00"), ZONE)  # a Wednesday
    assert hours.is_open(local("2026-11-19T10:00"), ZONE)


def test_several_ranges_a_day_and_midnight_close() -> None:
    hours = parse_hours("Mon-Fri 09:00-12:30, 14:00-18:00; Sun 20:00-24:00")
    assert not hours.is_open(local("2026-12-07T13:00"), ZONE)
    assert hours.is_open(local("2026-12-07T14:00"), ZONE)
    assert hours.is_open(local("2026-12-13T23:59"), ZONE)


def test_empty_hours_are_never_open() -> None:
    assert parse_hours("").never_open


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("Mon-Fri 9-18", "hours are HH:MM-HH:MM"),
        ("Mon-Fri", "expected days then hours"),
        ("Lun-Ven 09:00-18:00", "days are Mon..Sun"),
        ("Fri-Mon 09:00-18:00", "goes forward"),
        ("Mon 18:00-09:00", "closes before it opens"),
        ("Mon 09:00-25:00", "not a time of day"),
        ("Mon 09:00-12:00, 11:00-14:00", "overlap"),
    ],
)
def test_malformed_hours_fail_at_start_naming_the_variable(spec: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"INTAKE_CALL_CENTRE_HOURS: .*{problem}"):
        load_settings(call_centre_hours=spec)


def test_malformed_holiday_fails_naming_the_variable() -> None:
    expected = "INTAKE_CALL_CENTRE_HOLIDAYS: '18/11/2026' is not a date"
    with pytest.raises(ConfigError, match=expected):
        load_settings(call_centre_holidays="2026-11-18,18/11/2026")


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("+212520020900", DialKind.NUMBER, "+212520020900"),
        ("sip:agents@pbx.cashplus.example", DialKind.SIP, "sip:agents@pbx.cashplus.example"),
        ("queue:reclamations", DialKind.QUEUE, "reclamations"),
        ("queue:reclamations-{language}", DialKind.QUEUE, "reclamations-{language}"),
    ],
)
def test_dial_destinations(spec: str, kind: DialKind, target: str) -> None:
    found = parse_dial(spec)
    assert found is not None
    assert (found.kind, found.target) == (kind, target)


def test_queue_name_takes_the_language() -> None:
    found = parse_dial("queue:reclamations-{language}")
    assert found is not None
    assert found.queue_name("ary") == "reclamations-ary"


@pytest.mark.parametrize("spec", ["0520020915", "agents@pbx", "queue:", "queue:a{b}", "tel:+2125"])
def test_unknown_dial_destination_fails_naming_the_variable(spec: str) -> None:
    with pytest.raises(ConfigError, match="INTAKE_CALL_CENTRE_DIAL"):
        load_settings(call_centre_dial=spec)


def test_call_centre_is_open_only_with_a_destination() -> None:
    moment = local("2026-12-07T10:00")
    without = load_settings(call_centre_hours=HOURS).call_centre
    with_dial = load_settings(call_centre_hours=HOURS, call_centre_dial="+212520020900")
    assert not without.open_at(moment)
    assert with_dial.call_centre.open_at(moment)
    assert with_dial.call_centre.hours.holidays == frozenset()
