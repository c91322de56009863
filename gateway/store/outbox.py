"""The outbox: messages committed with their complaint, waiting for the broker.

The relay claims pending rows in order, publishes them, and marks them
published only after the broker confirmed. Rows are never deleted, so any
period can be published again (``replay_since``).

Several relays (one per instance) share the outbox: ``claim`` stamps a
batch with the relay's name and a lease end (``claimed_by``,
``claimed_until``) in one short transaction. On PostgreSQL the rows are
selected ``FOR UPDATE SKIP LOCKED``, so concurrent claims take disjoint
batches without waiting on each other; on SQLite the transaction holds the
database's write lock (``BEGIN IMMEDIATE``), which serializes claims. A
relay marks a row published only while the claim is still its own; a
claim whose relay died lapses at ``claimed_until`` and another relay takes
the row.

What the relay calls (``claim``, ``mark_published``, ``record_failure``,
``Counters.add``) raises ``StoreUnavailable`` when the database fails, its
message the database's error in full (``OperationalError: ...``), so the
relay tells the store's outages from the broker's without knowing SQLAlchemy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.store.db import reading, writing
from gateway.store.intake import StoreUnavailable
from gateway.store.leases import holder_is_gone
from gateway.store.tables import CounterRow, OutboxRow

log = logging.getLogger("intake.outbox")

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


_ITEM_COLUMNS = (
    OutboxRow.id,
    OutboxRow.event_id,
    OutboxRow.routing_key,
    OutboxRow.payload,
    OutboxRow.content_type,
)


def _publishable(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Unpublished, not held, and due."""
    return (
        OutboxRow.published_at.is_(None),
        OutboxRow.held.is_(False),
        or_(OutboxRow.available_at.is_(None), OutboxRow.available_at <= now),
    )


def _take(
    session: Session,
    which: ColumnElement[bool],
    limit: int,
    *,
    owner: str,
    until: datetime,
    now: datetime,
) -> list[OutboxItem]:
    query = (
        select(*_ITEM_COLUMNS)
        .where(*_publishable(now), which)
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    items = [OutboxItem(*row) for row in session.execute(query)]
    if items:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_([item.id for item in items]))
            .values(claimed_by=owner, claimed_until=until)
        )
    return items


def _claimants(session: Session, now: datetime) -> list[str]:
    """Relays holding unexpired claims on unpublished rows."""
    query = (
        select(OutboxRow.claimed_by)
        .where(OutboxRow.published_at.is_(None), OutboxRow.claimed_until > now)
        .distinct()
    )
    return [name for name in session.scalars(query) if name]


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """A database failure becomes ``StoreUnavailable``, named and worded as the database's error."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _owned(owner: str | None) -> tuple[ColumnElement[bool], ...]:
    return () if owner is None else (OutboxRow.claimed_by == owner,)


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int) -> list[OutboxItem]:
        """Publishable rows in order, claimed or not (a look, not a claim)."""
        query = (
            select(*_ITEM_COLUMNS)
            .where(*_publishable(datetime.now(UTC)))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        with reading(self.engine) as session:
            return [OutboxItem(*row) for row in session.execute(query)]

    def claim(
        self, limit: int, owner: str, lease: float, *, gone: Callable[[str], bool] = holder_is_gone
    ) -> list[OutboxItem]:
        """Take up to ``limit`` publishable rows nobody holds, for ``lease`` seconds.

        Rows claimed by a relay that ``gone`` says is dead (a process of this
        machine that no longer runs: a relay restarted after a SIGKILL) are
        taken at once rather than after their lease; others lapse at
        ``claimed_until``. Dead owners are looked for only when free rows run short.
        """
        now = datetime.now(UTC)
        until = now + timedelta(seconds=lease)
        free = or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= now)
        with _unavailable_on_failure(), writing(self.engine) as session:
            items = _take(session, free, limit, owner=owner, until=until, now=now)
            if len(items) < limit:
                dead = [name for name in _claimants(session, now) if name != owner and gone(name)]
                if dead:
                    taken = _take(
                        session,
                        OutboxRow.claimed_by.in_(dead),
                        limit - len(items),
                        owner=owner,
                        until=until,
                        now=now,
                    )
                    log.info("took over %d row(s) claimed by dead relay(s) %s", len(taken), dead)
                    items += taken
        return items

    def mark_published(
        self, ids: list[int], when: datetime | None = None, *, owner: str | None = None
    ) -> int:
        """Mark rows published; with ``owner``, only those it still holds. Returns the count."""
        if not ids:
            return 0
        moment = when or datetime.now(UTC)
        with _unavailable_on_failure(), writing(self.engine) as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids), OutboxRow.published_at.is_(None), *_owned(owner))
                .values(published_at=moment, claimed_until=None)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def record_failure(
        self, ids: list[int], error: str, *, hold: bool = False, owner: str | None = None
    ) -> None:
        """Count a failed attempt and give the claim up, so any relay may retry the rows."""
        if not ids:
            return
        with _unavailable_on_failure(), writing(self.engine) as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids), *_owned(owner))
                .values(
                    attempts=OutboxRow.attempts + 1,
                    last_error=error[:_ERROR_LIMIT],
                    held=hold,
                    claimed_until=None,
                )
            )

    def replay_since(self, since: datetime) -> int:
        """Queue again every message published at or after ``since``; returns the count.

        New rows are added (same event id and payload), so the history of what
        was sent when stays intact and consumers can drop the repeats by id.
        Each message is queued once, however often it was published in the
        period, and not at all while a copy of it still waits in the outbox:
        a replay run twice before the relay caught up queues nothing more.
        """
        waiting = select(OutboxRow.event_id).where(OutboxRow.published_at.is_(None))
        with writing(self.engine) as session:
            firsts = (
                select(func.min(OutboxRow.id))
                .where(
                    OutboxRow.published_at.is_not(None),
                    OutboxRow.published_at >= since,
                    OutboxRow.event_id.not_in(waiting),
                )
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


_UPSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class Counters:
    """Named counters in the database, so /metrics sees what every process counted."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, amount: int = 1) -> None:
        upsert = _UPSERTS.get(self.engine.dialect.name)
        with _unavailable_on_failure(), writing(self.engine) as session:
            if upsert is not None:
                # One statement: two relays adding to a new counter at once cannot
                # both insert it (PostgreSQL would refuse the second).
                statement = upsert(CounterRow).values(name=name, value=amount)
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[CounterRow.name],
                        set_={"value": CounterRow.value + statement.excluded.value},
                    )
                )
                return
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
