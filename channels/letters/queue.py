"""The OCR work queue is the ``letters`` table: add, claim, finish, fail.

Claiming is one write transaction: on PostgreSQL ``SELECT ... FOR UPDATE
SKIP LOCKED`` lets workers on several machines take different rows; on
SQLite the transaction holds the database's write lock (``BEGIN
IMMEDIATE``), so the select-then-update cannot race. A worker renews its
claim (``touch``) while it reads a letter, however long; a ``running`` row
whose worker died is taken again once its claim is older than ``stale_after``.

``finish`` and ``fail`` rewrite the complaint (text, language, attachments)
and release its outbox row in the same transaction as the letter's status,
so a complaint is never published with half of its OCR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.db import reading, writing
from gateway.store.intake import EVENT_CONTENT_TYPE
from gateway.store.tables import DONE, FAILED, PENDING, RUNNING, ComplaintRow, LetterRow, OutboxRow
from normalizer.contract import Channel, ComplaintEvent, ComplaintMessage, routing_key_for

# A letter whose worker died this many times is failed rather than retried forever.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """What a worker writes back for one letter."""

    status: str  # done or failed
    message: ComplaintMessage
    result: dict[str, Any] | None = None
    thumbnail: str | None = None
    error_code: str | None = None
    error: str | None = None


class LetterQueue:
    def __init__(self, engine: Engine, event_source: str = "") -> None:
        self.engine = engine
        self.event_source = event_source

    def add(self, row: LetterRow) -> LetterRow:
        """Insert the letter; a repeat (same complaint) returns the row already there."""
        try:
            with writing(self.engine) as session:
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
        with reading(self.engine) as session:
            return session.get(LetterRow, letter_id)

    def by_complaint(self, complaint_id: str) -> LetterRow | None:
        with reading(self.engine) as session:
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
        with writing(self.engine) as session:
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
        with writing(self.engine) as session:
            session.execute(
                update(LetterRow)
                .where(LetterRow.id == letter_id, LetterRow.status == RUNNING)
                .values(claimed_at=datetime.now(UTC))
            )

    def held_without_letter(self, recorded_before: datetime) -> list[ComplaintMessage]:
        """Letter complaints still held in the outbox that have no letter row."""
        with reading(self.engine) as session:
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
        with writing(self.engine) as session:
            session.execute(
                update(LetterRow).where(LetterRow.id == letter_id).values(status=PENDING)
            )

    def complete(self, letter_id: str, outcome: Outcome) -> bool:
        """Write the outcome and release the complaint; False if it was published already."""
        message = outcome.message
        event = ComplaintEvent.wrap(message, self.event_source)
        now = datetime.now(UTC)
        with writing(self.engine) as session:
            session.execute(
                update(ComplaintRow)
                .where(ComplaintRow.id == message.id)
                .values(message=message.model_dump_json(), language=message.language.tag)
            )
            released = session.execute(
                update(OutboxRow)
                .where(OutboxRow.complaint_id == message.id, OutboxRow.published_at.is_(None))
                .values(
                    payload=event.model_dump_json().encode(),
                    content_type=EVENT_CONTENT_TYPE,
                    routing_key=routing_key_for(message),
                    available_at=now,
                )
            )
            session.execute(
                update(LetterRow)
                .where(LetterRow.id == letter_id)
                .values(
                    status=outcome.status,
                    finished_at=now,
                    result=outcome.result,
                    language=message.language.tag,
                    thumbnail=outcome.thumbnail,
                    error_code=outcome.error_code,
                    error=outcome.error,
                )
            )
        return bool(released.rowcount)  # type: ignore[attr-defined]

    def give_up_on(self, row: LetterRow) -> bool:
        return row.attempts >= MAX_ATTEMPTS

    def abandon(self, letter_id: str, error: str) -> None:
        """Stop retrying a letter our own code keeps failing on; its complaint is still
        published when its hold runs out (``OCR_HOLD``), without text."""
        with writing(self.engine) as session:
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


__all__ = ["DONE", "FAILED", "LetterQueue", "Outcome"]
