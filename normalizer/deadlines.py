"""Legal deadlines of Bank Al-Maghrib circular 10/W/16.

Acknowledge within 10 days and answer within 40 days, counted in calendar
days from the day Cash Plus received the complaint. Days are Moroccan days:
``Africa/Casablanca`` moves between UTC+1 and UTC+0 around Ramadan, so a
complaint received at 23:30 local time belongs to that local date even when
it is already the next day in UTC (or the reverse). A deadline ends at the
last second of its local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LEGAL_ZONE = "Africa/Casablanca"
ACK_DAYS = 10
ANSWER_DAYS = 40
_END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class Deadlines:
    ack_due_at: datetime
    answer_due_at: datetime


def local_receipt_date(received_at: datetime, zone: str = LEGAL_ZONE) -> date:
    """The Moroccan calendar date on which the complaint was received."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must carry a time zone")
    return received_at.astimezone(ZoneInfo(zone)).date()


def end_of_local_day(day: date, zone: str = LEGAL_ZONE) -> datetime:
    """The last second of ``day`` in ``zone``, as an aware datetime in that zone.

    ``fold=0`` picks the first occurrence if the wall clock repeats that
    night; 23:59:59 is never inside Morocco's transitions, which happen at
    02:00 or 03:00.
    """
    return datetime.combine(day, _END_OF_DAY, tzinfo=ZoneInfo(zone))


def compute_deadlines(
    received_at: datetime,
    *,
    zone: str = LEGAL_ZONE,
    ack_days: int = ACK_DAYS,
    answer_days: int = ANSWER_DAYS,
) -> Deadlines:
    """Both deadlines for a complaint received at ``received_at``."""
    day = local_receipt_date(received_at, zone)
    return Deadlines(
        ack_due_at=end_of_local_day(day + timedelta(days=ack_days), zone),
        answer_due_at=end_of_local_day(day + timedelta(days=answer_days), zone),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
