"""What the operator page shows, assembled in one blocking call (run in a worker thread).

figures (store) + dead letters (broker) + leases -> **Dashboard** -> ``ops.html``.

The broker may be away while the database is not (or the reverse): the page
still shows what it can, with the broker's error where the dead letters
would be, because that is exactly when an operator opens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup

from gateway.lib.services import Services
from gateway.ops import figures, plots
from gateway.ops.quarantine import replayers
from gateway.store.leases import LeaseState
from gateway.store.outbox import OutboxStats
from gateway.store.quarantine import QuarantineItem
from router.deadletters import DeadLetter, DeadLetters

DAYS = 14
LIST_LIMIT = 50


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    days: int
    per_channel: Markup
    per_language: Markup
    received: int
    outbox: OutboxStats
    oldest_age: timedelta | None
    # Captured inputs waiting for a normalizer runner, and the oldest one's age.
    stage_pending: int
    stage_oldest_age: timedelta | None
    backlog: Markup
    acks: figures.AckFigures
    acks_chart: Markup
    quarantine: list[QuarantineItem]
    quarantine_counts: dict[str, int]
    replayable: frozenset[str]
    dead: list[DeadLetter]
    dead_count: int | None
    dead_error: str | None
    leases: list[LeaseState]


def build_dashboard(services: Services, texts: dict[str, str]) -> Dashboard:
    now = datetime.now(UTC)
    zone = services.settings.timezone
    source = services.store.figures
    tz = ZoneInfo(zone)
    by_channel, by_language = figures.complaints_per_day(source, zone, now, DAYS)
    day_labels = [day.strftime("%d/%m") for day in by_channel.days]
    stats = services.store.outbox.stats()
    acks = figures.acknowledgements(source, zone, now)
    quarantine = services.store.quarantine
    dead, dead_count, dead_error = _dead_letters(services)
    stages = services.store.captures.backlog()
    stage_oldest = min((stage.oldest for stage in stages if stage.oldest), default=None)
    return Dashboard(
        now=now,
        days=DAYS,
        per_channel=plots.stacked_bars(
            day_labels,
            by_channel.series,
            title=texts["per_day_channel"].format(days=DAYS),
            colours=plots.CHANNEL_COLOURS,
        ),
        per_language=plots.stacked_bars(
            day_labels, by_language.series, title=texts["per_day_language"].format(days=DAYS)
        ),
        received=by_channel.total,
        outbox=stats,
        oldest_age=None if stats.oldest_pending_at is None else now - stats.oldest_pending_at,
        stage_pending=sum(stage.pending for stage in stages),
        stage_oldest_age=None if stage_oldest is None else now - stage_oldest,
        backlog=plots.line(
            [
                (moment.astimezone(tz).strftime("%H:%M"), count)
                for moment, count in figures.outbox_backlog(source, now)
            ],
            title=texts["outbox_backlog"],
        ),
        acks=acks,
        acks_chart=_acks_chart(acks, texts),
        quarantine=quarantine.entries(limit=LIST_LIMIT),
        quarantine_counts=quarantine.unresolved_by_channel(),
        replayable=frozenset(replayers()),
        dead=dead,
        dead_count=dead_count,
        dead_error=dead_error,
        leases=services.store.leases.all(),
    )


def _acks_chart(acks: figures.AckFigures, texts: dict[str, str]) -> Markup:
    labels = [texts["overdue_label"], *(day.strftime("%d/%m") for day in acks.due_by_day)]
    values = [acks.overdue, *acks.due_by_day.values()]
    colours = [plots.OVERDUE, *([plots.DUE] * len(acks.due_by_day))]
    return plots.bars(labels, values, title=texts["acks_chart"], colours=colours)


def _dead_letters(services: Services) -> tuple[list[DeadLetter], int | None, str | None]:
    queue = DeadLetters(services.settings)
    try:
        return queue.peek(LIST_LIMIT), queue.count(), None
    except Exception as exc:  # the page must still show the store's figures
        return [], None, f"{type(exc).__name__}: {exc}"


def human_age(age: timedelta | None) -> str:
    """``3 j 4 h``, ``2 h 5 min``, ``42 s``: short enough for a tile."""
    if age is None:
        return "—"
    seconds = int(age.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} j {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
