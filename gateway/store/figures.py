"""The rows behind the operator page, /metrics and the readiness figures: read-only queries.

store tables -> **Figures** -> ``gateway.ops.figures`` (days, buckets, charts),
``gateway.ops.metrics`` and ``gateway.health`` (Prometheus).

Each method is one read (no write lock on SQLite) and gives plain values:
tuples, counts, datetimes. What they mean to an operator (calendar days in
the regulator's zone, backlog at regular instants) is worked out by
``gateway.ops``, in Python, so the same code runs on SQLite and PostgreSQL.
Database errors propagate as they are, like the other readers of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, func, select

from gateway.store.db import reading
from gateway.store.tables import (
    AcknowledgementRow,
    ComplaintRow,
    LetterRow,
    OutboxRow,
    QuarantineRow,
)


@dataclass(frozen=True)
class OwedAcknowledgements:
    """Complaints owed an acknowledgement, and how many acknowledgements were skipped."""

    # (received_at, ack_due_at) of each original complaint without an acknowledgement
    # or whose acknowledgement is in one of the statuses asked for.
    owed: list[tuple[datetime, datetime]]
    skipped: int


@dataclass(frozen=True)
class RecordedByChannel:
    """Everything recorded so far, per channel: complaints, and quarantined inputs."""

    complaints: list[tuple[str, int]]
    quarantined: list[tuple[str, int]]


@dataclass(frozen=True)
class OcrTimes:
    """Finished letters' OCR times: how many, their sum, and how many within each edge."""

    count: int
    total_seconds: float
    within: list[int]


class Figures:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- complaints ---------------------------------------------------------
    def complaints_received_since(self, start: datetime) -> list[tuple[str, str, datetime]]:
        """``(channel, language, received_at)`` of the complaints received since ``start``."""
        query = select(ComplaintRow.channel, ComplaintRow.language, ComplaintRow.received_at).where(
            ComplaintRow.received_at >= start
        )
        with reading(self.engine) as session:
            return [
                (channel, language, received_at)
                for channel, language, received_at in session.execute(query)
            ]

    def last_complaint_by_channel(self) -> dict[str, datetime]:
        """When each channel last recorded a complaint (zone-less times read as UTC)."""
        query = select(ComplaintRow.channel, func.max(ComplaintRow.created_at)).group_by(
            ComplaintRow.channel
        )
        with reading(self.engine) as session:
            found: dict[str, datetime] = {}
            for channel, moment in session.execute(query):
                if moment is not None:
                    found[channel] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return found

    def recorded_by_channel(self) -> RecordedByChannel:
        """Complaints and quarantined inputs per channel, read in one transaction."""
        with reading(self.engine) as session:
            complaints = session.execute(
                select(ComplaintRow.channel, func.count()).group_by(ComplaintRow.channel)
            ).all()
            quarantined = session.execute(
                select(QuarantineRow.channel, func.count()).group_by(QuarantineRow.channel)
            ).all()
        return RecordedByChannel(
            complaints=[(channel, count) for channel, count in complaints],
            quarantined=[(channel, count) for channel, count in quarantined],
        )

    # -- outbox -------------------------------------------------------------
    def outbox_spans(self, start: datetime) -> list[tuple[datetime, datetime | None]]:
        """``(created_at, published_at)`` of rows not held, not published before ``start``."""
        query = select(OutboxRow.created_at, OutboxRow.published_at).where(
            OutboxRow.held.is_(False),
            OutboxRow.published_at.is_(None) | (OutboxRow.published_at >= start),
        )
        with reading(self.engine) as session:
            return [(created, published) for created, published in session.execute(query)]

    def outbox_claimed(self, now: datetime) -> int:
        """Unpublished rows a relay holds a running claim on at ``now``."""
        query = select(func.count()).where(
            OutboxRow.published_at.is_(None), OutboxRow.claimed_until > now
        )
        with reading(self.engine) as session:
            return int(session.scalar(query) or 0)

    # -- acknowledgements ---------------------------------------------------
    def owed_acknowledgements(self, unsent: Iterable[str], skipped: str) -> OwedAcknowledgements:
        """Original complaints with no acknowledgement or one in ``unsent``; ``skipped`` counted."""
        owed = (
            select(ComplaintRow.received_at, ComplaintRow.ack_due_at)
            .outerjoin(AcknowledgementRow, AcknowledgementRow.complaint_id == ComplaintRow.id)
            .where(
                ComplaintRow.follow_up_of.is_(None),
                AcknowledgementRow.id.is_(None) | AcknowledgementRow.status.in_(tuple(unsent)),
            )
        )
        skipped_query = select(func.count()).where(AcknowledgementRow.status == skipped)
        with reading(self.engine) as session:
            rows = session.execute(owed).all()
            skipped_count = int(session.scalar(skipped_query) or 0)
        return OwedAcknowledgements(
            owed=[(received_at, ack_due_at) for received_at, ack_due_at in rows],
            skipped=skipped_count,
        )

    def acknowledgement_states(self) -> dict[str, int]:
        """Acknowledgements per status."""
        query = select(AcknowledgementRow.status, func.count()).group_by(AcknowledgementRow.status)
        with reading(self.engine) as session:
            return {status: int(count) for status, count in session.execute(query)}

    # -- letters ------------------------------------------------------------
    def letters(self, edges: Sequence[float]) -> tuple[list[tuple[str, int]], OcrTimes]:
        """Letters per OCR status, and the OCR times of the finished ones in ``edges`` buckets.

        One aggregate query: no row per letter comes back, however many there are.
        """
        seconds = self._ocr_seconds()
        columns: list[ColumnElement[Any]] = [
            func.count(),
            func.coalesce(func.sum(seconds), 0.0),
            *(func.coalesce(func.sum(case((seconds <= edge, 1), else_=0)), 0) for edge in edges),
        ]
        with reading(self.engine) as session:
            by_status = session.execute(
                select(LetterRow.status, func.count()).group_by(LetterRow.status)
            ).all()
            times = session.execute(
                select(*columns).where(
                    LetterRow.finished_at.is_not(None), LetterRow.claimed_at.is_not(None)
                )
            ).one()
        finished, total, *within = times
        return (
            [(status, int(count)) for status, count in by_status],
            OcrTimes(int(finished or 0), float(total or 0.0), [int(n or 0) for n in within]),
        )

    def _ocr_seconds(self) -> ColumnElement[Any]:
        """Seconds from a letter's claim to its OCR result, in this database's SQL."""
        if self.engine.dialect.name == "postgresql":
            return func.extract("epoch", LetterRow.finished_at - LetterRow.claimed_at)
        # SQLite keeps the times as text; julianday reads them (days, with fractions).
        return (func.julianday(LetterRow.finished_at) - func.julianday(LetterRow.claimed_at)) * (
            86400.0
        )
