"""The outbox: messages committed with their complaint, waiting for the broker.

The relay reads pending rows in order, publishes them, and marks them
published only after the broker confirmed. Rows are never deleted, so any
period can be published again (``replay_since``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, or_, select, update

from gateway.store.db import reading, writing
from gateway.store.models import CounterRow, OutboxRow

_ERROR_LIMIT = 2000


@dataclass(frozen=True)
class OutboxItem:
    id: int
    event_id: str
    routing_key: str
    payload: bytes
    content_type: str


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    held: int
    oldest_pending_at: datetime | None
    published: int
    # Not yet due (e.g. a voice complaint waiting for its transcript).
    waiting: int = 0


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int) -> list[OutboxItem]:
        now = datetime.now(UTC)
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.published_at.is_(None),
                OutboxRow.held.is_(False),
                or_(OutboxRow.available_at.is_(None), OutboxRow.available_at <= now),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        with reading(self.engine) as session:
            return [
                OutboxItem(row.id, row.event_id, row.routing_key, row.payload, row.content_type)
                for row in session.scalars(query)
            ]

    def mark_published(self, ids: list[int], when: datetime | None = None) -> None:
        if not ids:
            return
        moment = when or datetime.now(UTC)
        with writing(self.engine) as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids), OutboxRow.published_at.is_(None))
                .values(published_at=moment)
            )

    def record_failure(self, ids: list[int], error: str, *, hold: bool = False) -> None:
        if not ids:
            return
        with writing(self.engine) as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids))
                .values(
                    attempts=OutboxRow.attempts + 1,
                    last_error=error[:_ERROR_LIMIT],
                    held=hold,
                )
            )

    def replay_since(self, since: datetime) -> int:
        """Queue again every message published at or after ``since``; returns the count.

        New rows are added (same event id and payload), so the history of what
        was sent when stays intact and consumers can drop the repeats by id.
        A message is queued once even if it was already replayed before.
        """
        with writing(self.engine) as session:
            firsts = (
                select(func.min(OutboxRow.id))
                .where(OutboxRow.published_at.is_not(None), OutboxRow.published_at >= since)
                .group_by(OutboxRow.event_id)
            )
            originals = session.scalars(
                select(OutboxRow).where(OutboxRow.id.in_(firsts)).order_by(OutboxRow.id)
            ).all()
            for row in originals:
                session.add(
                    OutboxRow(
                        event_id=row.event_id,
                        complaint_id=row.complaint_id,
                        routing_key=row.routing_key,
                        payload=row.payload,
                        content_type=row.content_type,
                        attempts=0,
                        held=False,
                    )
                )
            return len(originals)

    def release_held(self) -> int:
        """Let held rows be tried again (after the cause was fixed)."""
        with writing(self.engine) as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.held.is_(True), OutboxRow.published_at.is_(None))
                .values(held=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def stats(self) -> OutboxStats:
        now = datetime.now(UTC)
        unpublished = OutboxRow.published_at.is_(None)
        available = or_(OutboxRow.available_at.is_(None), OutboxRow.available_at <= now)
        with reading(self.engine) as session:
            pending, oldest = session.execute(
                select(func.count(), func.min(OutboxRow.created_at)).where(
                    unpublished, OutboxRow.held.is_(False), available
                )
            ).one()
            waiting = session.scalar(
                select(func.count()).where(unpublished, OutboxRow.held.is_(False), ~available)
            )
            held = session.scalar(select(func.count()).where(unpublished, OutboxRow.held.is_(True)))
            published = session.scalar(
                select(func.count()).where(OutboxRow.published_at.is_not(None))
            )
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return OutboxStats(
            pending=int(pending),
            held=int(held or 0),
            oldest_pending_at=oldest,
            published=int(published or 0),
            waiting=int(waiting or 0),
        )


class Counters:
    """Named counters in the database, so /metrics sees what every process counted."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, amount: int = 1) -> None:
        with writing(self.engine) as session:
            changed = session.execute(
                update(CounterRow)
                .where(CounterRow.name == name)
                .values(value=CounterRow.value + amount)
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                session.execute(insert(CounterRow).values(name=name, value=amount))

    def all(self) -> dict[str, int]:
        with reading(self.engine) as session:
            return {row.name: int(row.value) for row in session.scalars(select(CounterRow))}
