"""The OCR work queue, the ``letters`` table: record, claim, complete, fail, and the reads.

``channels.letters`` (intake, the OCR worker, the status API and page) ->
``Store.letters`` -> **LetterQueue** (record a letter, claim the next one,
renew a claim, complete it and release its complaint, put it back, give up
on it; the rows for the status view and the orphan sweep) -> the
``letters`` table, and the complaint through ``ComplaintRevisions``.

Claiming is one write transaction: on PostgreSQL ``SELECT ... FOR UPDATE
SKIP LOCKED`` lets workers on several machines take different rows; on
SQLite the transaction holds the database's write lock (``BEGIN
IMMEDIATE``), so the select-then-update cannot race. A worker renews its
claim (``touch``) while it reads a letter, however long; a ``running`` row
whose worker died is taken again once its claim is older than ``stale_after``.

``complete`` writes the letter's outcome and revises its complaint (text,
language, attachments, review flag) in one transaction, through the same
path as the phone line (``gateway.store.revisions``): a complaint still
held for its OCR is rewritten and released, so it is never published with
half of its OCR; one already published (its hold ran out, or runs out
within ``RELAY_MARGIN``) is updated and its OCR follows as an amendment.

The database unreachable is ``StoreUnavailable``; any other database error
(a letter whose row breaks a constraint) is raised as it is, so a sweep can
pass over that one letter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gateway.store.db import reading, writing
from gateway.store.intake import StoreUnavailable
from gateway.store.revisions import ComplaintRevisions, Revision
from gateway.store.tables import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    ComplaintRow,
    LetterRow,
    OutboxRow,
)
from normalizer.contract import Channel, ComplaintMessage

__all__ = [
    "DONE",
    "FAILED",
    "MAX_ATTEMPTS",
    "PENDING",
    "RUNNING",
    "LetterOutcome",
    "LetterQueue",
    "LetterRow",
]

# A letter whose worker died this many times is failed rather than retried forever.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class LetterOutcome:
    """What a worker writes back for one letter."""

    status: str  # done or failed
    message: ComplaintMessage
    result: dict[str, Any] | None = None
    thumbnail: str | None = None
    error_code: str | None = None
    error: str | None = None


@contextmanager
def _reachable() -> Iterator[None]:
    """The database itself failing (down, unreachable) is ``StoreUnavailable``."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


class LetterQueue:
    def __init__(self, engine: Engine, event_source: str) -> None:
        self.engine = engine
        self.revisions = ComplaintRevisions(engine, event_source)

    def add(self, row: LetterRow) -> LetterRow:
        """Insert the letter; a repeat (same complaint) returns the row already there."""
        try:
            with _reachable(), writing(self.engine) as session:
                session.add(row)
                session.flush()
                session.expunge(row)  # keep its values readable after the commit
        except IntegrityError:
            existing = self.by_complaint(row.complaint_id)
            if existing is None:
                raise
            return existing
        return row

    def get(self, letter_id: str) -> LetterRow | None:
        with _reachable(), reading(self.engine) as session:
            return session.get(LetterRow, letter_id)

    def by_complaint(self, complaint_id: str) -> LetterRow | None:
        with _reachable(), reading(self.engine) as session:
            return session.scalars(
                select(LetterRow).where(LetterRow.complaint_id == complaint_id)
            ).first()

    def claim(self, stale_after: timedelta) -> LetterRow | None:
        """Take the oldest waiting letter (or one whose worker died) and mark it running."""
        now = datetime.now(UTC)
        waiting = or_(
            LetterRow.status == PENDING,
            (LetterRow.status == RUNNING) & (LetterRow.claimed_at < now - stale_after),
        )
        with _reachable(), writing(self.engine) as session:
            row = session.scalars(
                select(LetterRow)
                .where(waiting)
                .order_by(LetterRow.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            row.status, row.claimed_at, row.attempts = RUNNING, now, row.attempts + 1
            session.flush()
            session.expunge(row)
            return row

    def touch(self, letter_id: str) -> None:
        """Renew a running letter's claim: its worker is alive, so it is not stale."""
        with _reachable(), writing(self.engine) as session:
            session.execute(
                update(LetterRow)
                .where(LetterRow.id == letter_id, LetterRow.status == RUNNING)
                .values(claimed_at=datetime.now(UTC))
            )

    def held_without_letter(self, recorded_before: datetime) -> list[ComplaintMessage]:
        """Letter complaints still held in the outbox that have no letter row."""
        with _reachable(), reading(self.engine) as session:
            found = session.scalars(
                select(ComplaintRow.message)
                .join(OutboxRow, OutboxRow.complaint_id == ComplaintRow.id)
                .outerjoin(LetterRow, LetterRow.complaint_id == ComplaintRow.id)
                .where(
                    ComplaintRow.channel == Channel.LETTER.value,
                    ComplaintRow.created_at < recorded_before,
                    OutboxRow.published_at.is_(None),
                    LetterRow.id.is_(None),
                )
                .distinct()
            ).all()
        return [ComplaintMessage.model_validate_json(message) for message in found]

    def retry_later(self, letter_id: str) -> None:
        """Our failure (not the file's): back to the queue."""
        with _reachable(), writing(self.engine) as session:
            session.execute(
                update(LetterRow).where(LetterRow.id == letter_id).values(status=PENDING)
            )

    def complete(self, letter_id: str, outcome: LetterOutcome) -> Revision | None:
        """Write the outcome and revise the complaint with it, in one transaction.

        Returns the revision: ``released`` (it was still held), ``amended`` (it
        was published already: an amendment is queued) or ``unchanged``; None
        if the complaint is not found (the letter's outcome is written anyway).
        """
        message = outcome.message

        def finish(session: Session) -> None:
            session.execute(
                update(LetterRow)
                .where(LetterRow.id == letter_id)
                .values(
                    status=outcome.status,
                    finished_at=datetime.now(UTC),
                    result=outcome.result,
                    language=message.language.tag,
                    thumbnail=outcome.thumbnail,
                    error_code=outcome.error_code,
                    error=outcome.error,
                )
            )

        def read(
            _session: Session, _key: str, _current: ComplaintMessage
        ) -> tuple[ComplaintMessage, bool]:
            return message, True  # the OCR is all a letter waits for

        key = self._complaint_key(message.id)
        if key is None:
            with _reachable(), writing(self.engine) as session:
                finish(session)
            return None
        return self.revisions.revise(key, read, first=finish)

    def _complaint_key(self, complaint_id: str) -> str | None:
        """The key ``ComplaintRevisions`` finds the complaint by (its dedup key)."""
        with _reachable(), reading(self.engine) as session:
            return session.scalar(
                select(ComplaintRow.dedup_key).where(ComplaintRow.id == complaint_id)
            )

    def give_up_on(self, row: LetterRow) -> bool:
        return row.attempts >= MAX_ATTEMPTS

    def abandon(self, letter_id: str, error: str) -> None:
        """Stop retrying a letter our own code keeps failing on; its complaint is still
        published when its hold runs out (``OCR_HOLD``), without text."""
        with _reachable(), writing(self.engine) as session:
            session.execute(
                update(LetterRow)
                .where(LetterRow.id == letter_id)
                .values(
                    status=FAILED,
                    finished_at=datetime.now(UTC),
                    error_code="internal_error",
                    error=error[:2000],
                )
            )
