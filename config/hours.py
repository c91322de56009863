"""The call centre's opening hours and where its calls go, parsed strictly at start-up.

``INTAKE_CALL_CENTRE_HOURS`` is a list of day ranges and time ranges in the
settings' time zone (Africa/Casablanca)::

    Mon-Fri 09:00-18:00; Sat 09:00-13:00

A day may have several ranges (``Mon-Fri 09:00-12:30, 14:00-18:00``); a
range ends before its closing minute (18:00 is closed; 24:00 is midnight). Days on
``INTAKE_CALL_CENTRE_HOLIDAYS`` (``YYYY-MM-DD``, comma-separated) are closed
all day. ``INTAKE_CALL_CENTRE_DIAL`` is where a caller is put through: a
number in E.164, a SIP URI, or ``queue:NAME`` for a Twilio queue. Anything
else fails at start-up naming the variable (``ValueError`` here; the settings
turn it into ``ConfigError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SPEC = re.compile(r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?$")
_TIME_RANGE = re.compile(r"^(?P<open>\d{2}:\d{2})-(?P<close>\d{2}:\d{2})$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SIP = re.compile(r"^sips?:[^@\s]+@[^\s]+$")
_QUEUE = re.compile(r"^queue:(?P<name>[A-Za-z0-9_.{}-]{1,64})$")


@dataclass(frozen=True)
class OpeningHours:
    """Open time ranges per weekday (0 = Monday) and closed dates."""

    ranges: tuple[tuple[tuple[time, time], ...], ...]
    holidays: frozenset[date]

    @property
    def never_open(self) -> bool:
        return not any(self.ranges)

    def is_open(self, moment: datetime, zone: str) -> bool:
        """Whether ``moment`` (aware) falls in an opening range, local time, not on a holiday."""
        local = moment.astimezone(ZoneInfo(zone))
        if local.date() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None)
        return any(start <= now < end for start, end in self.ranges[local.weekday()])


def parse_hours(spec: str, holidays: str = "") -> OpeningHours:
    """``Mon-Fri 09:00-18:00; Sat 09:00-13:00`` -> ``OpeningHours`` (empty: never open)."""
    days: list[list[tuple[time, time]]] = [[] for _ in DAYS]
    for part in (piece.strip() for piece in spec.split(";")):
        if not part:
            continue
        day_spec, _, times = part.partition(" ")
        if not times.strip():
            raise ValueError(f"{part!r}: expected days then hours, e.g. 'Mon-Fri 09:00-18:00'")
        spans = [_time_range(item.strip()) for item in times.split(",")]
        for day in _days(day_spec):
            days[day].extend(spans)
    for day, spans in enumerate(days):
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                raise ValueError(f"{DAYS[day].title()}: opening ranges overlap")
    return OpeningHours(tuple(tuple(spans) for spans in days), parse_holidays(holidays))


def parse_holidays(spec: str) -> frozenset[date]:
    found: set[date] = set()
    for item in (piece.strip() for piece in spec.split(",")):
        if not item:
            continue
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", item):
                raise ValueError(item)
            found.add(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"{item!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(found)


def _days(spec: str) -> list[int]:
    match = _DAY_SPEC.match(spec.strip().lower())
    if match is None or match["first"] not in DAYS or (match["last"] or "mon") not in DAYS:
        raise ValueError(f"{spec!r}: days are Mon..Sun or a range such as Mon-Fri")
    first = DAYS.index(match["first"])
    last = DAYS.index(match["last"]) if match["last"] else first
    if last < first:
        raise ValueError(f"{spec!r}: a day range goes forward (Mon-Fri, not Fri-Mon)")
    return list(range(first, last + 1))


def _time_range(spec: str) -> tuple[time, time]:
    match = _TIME_RANGE.match(spec)
    if match is None:
        raise ValueError(f"{spec!r}: hours are HH:MM-HH:MM, e.g. 09:00-18:00")
    try:
        start = time.fromisoformat(match["open"])
        # 24:00 closes at midnight: open until the last instant of the day.
        end = time.max if match["close"] == "24:00" else time.fromisoformat(match["close"])
    except ValueError:
        raise ValueError(f"{spec!r}: not a time of day") from None
    if end <= start:
        raise ValueError(f"{spec!r}: closes before it opens")
    return start, end


class DialKind(StrEnum):
    NUMBER = "number"
    SIP = "sip"
    QUEUE = "queue"


@dataclass(frozen=True)
class DialTarget:
    kind: DialKind
    target: str  # the number, the SIP URI or the queue's name

    def queue_name(self, language: str) -> str:
        """The queue's name, ``{language}`` replaced (one queue per language if the name asks)."""
        return self.target.replace("{language}", language)


def parse_dial(spec: str) -> DialTarget | None:
    """``+2125...`` / ``sip:agents@pbx`` / ``queue:NAME`` -> ``DialTarget`` (empty: None)."""
    spec = spec.strip()
    if not spec:
        return None
    if _E164.match(spec):
        return DialTarget(DialKind.NUMBER, spec)
    if _SIP.match(spec):
        return DialTarget(DialKind.SIP, spec)
    queue = _QUEUE.match(spec)
    if queue is not None:
        name = queue["name"]
        if name.replace("{language}", "x").count("{") or name.replace("{language}", "x").count("}"):
            raise ValueError(f"{spec!r}: the only placeholder a queue name takes is {{language}}")
        return DialTarget(DialKind.QUEUE, name)
    raise ValueError(
        f"{spec!r}: expected a number in E.164 (+212...), a SIP URI (sip:user@host) or queue:NAME"
    )


@dataclass(frozen=True)
class CallCentre:
    """Everything the phone line needs to decide whether a caller is put through."""

    hours: OpeningHours
    dial: DialTarget | None
    wait: int  # seconds
    zone: str

    def open_at(self, moment: datetime) -> bool:
        """In opening hours, not a holiday, and somewhere to put the caller through."""
        return self.dial is not None and self.hours.is_open(moment, self.zone)
