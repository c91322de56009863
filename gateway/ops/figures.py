"""The numbers behind the operator page and /metrics, from the rows of the shared database.

store (``gateway.store.figures``: complaints, outbox, acknowledgements)
-> **figures** -> ``gateway.ops.plots`` (SVG) and ``gateway.health`` (Prometheus).

Every figure is computed from rows every instance shares, so all web
instances show the same truth whichever process did the work. Days are
calendar days in the configured zone (the regulator's clock); bucketing is
done here rather than in SQL so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.store.figures import Figures

# Acknowledgement states that mean "nothing reached the customer yet, and we owe it".
# ``skipped`` (regulator-forwarded, follow-ups, robots) is left to staff and counted apart.
UNSENT = ("sending", "failed", "queued", "undelivered")
SENT = "sent"
SKIPPED = "skipped"


@dataclass(frozen=True)
class DailySeries:
    """Counts per local day, one list per key (channel or language), aligned on ``days``."""

    days: list[date]
    series: dict[str, list[int]]

    @property
    def total(self) -> int:
        return sum(sum(values) for values in self.series.values())


@dataclass(frozen=True)
class AckFigures:
    overdue: int
    due: int
    # Complaints without a sent acknowledgement two days after receipt.
    late_two_days: int
    skipped: int
    # Not yet acknowledged, per local day of ``ack_due_at`` (today onwards).
    due_by_day: dict[date, int] = field(default_factory=dict)


def local_days(zone: ZoneInfo, now: datetime, days: int) -> list[date]:
    today = now.astimezone(zone).date()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def complaints_per_day(
    source: Figures, zone: str, now: datetime, days: int = 14
) -> tuple[DailySeries, DailySeries]:
    """Complaints received per day over ``days`` days: by channel, and by language."""
    tz = ZoneInfo(zone)
    axis = local_days(tz, now, days)
    start = datetime.combine(axis[0], datetime.min.time(), tzinfo=tz).astimezone(UTC)
    by_channel: dict[str, Counter[date]] = defaultdict(Counter)
    by_language: dict[str, Counter[date]] = defaultdict(Counter)
    for channel, language, received_at in source.complaints_received_since(start):
        day = received_at.astimezone(tz).date()
        by_channel[channel][day] += 1
        by_language[language][day] += 1
    return _aligned(axis, by_channel), _aligned(axis, by_language)


def _aligned(axis: list[date], counts: dict[str, Counter[date]]) -> DailySeries:
    ordered = sorted(counts, key=lambda key: (-sum(counts[key].values()), key))
    return DailySeries(axis, {key: [counts[key][day] for day in axis] for key in ordered})


def outbox_backlog(
    source: Figures, now: datetime, hours: int = 24, points: int = 48
) -> list[tuple[datetime, int]]:
    """Unpublished messages at regular instants over the last ``hours`` (held rows apart)."""
    start = now - timedelta(hours=hours)
    spans = source.outbox_spans(start)
    step = (now - start) / (points - 1)
    instants = [start + step * index for index in range(points)]
    return [
        (
            moment,
            sum(
                1
                for created, published in spans
                if created <= moment and (published is None or published > moment)
            ),
        )
        for moment in instants
    ]


def acknowledgements(source: Figures, zone: str, now: datetime, days_ahead: int = 10) -> AckFigures:
    """Complaints still owed an acknowledgement: overdue, due, late after two days."""
    tz = ZoneInfo(zone)
    overdue = due = late = 0
    by_day: Counter[date] = Counter()
    last_day = now.astimezone(tz).date() + timedelta(days=days_ahead)
    found = source.owed_acknowledgements(UNSENT, SKIPPED)
    for received_at, ack_due_at in found.owed:
        late += received_at <= now - timedelta(days=2)
        if ack_due_at < now:
            overdue += 1
            continue
        due += 1
        day = ack_due_at.astimezone(tz).date()
        if day <= last_day:
            by_day[day] += 1
    return AckFigures(overdue, due, late, found.skipped, dict(sorted(by_day.items())))
