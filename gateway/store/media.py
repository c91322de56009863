"""Media to download after a webhook was answered: call recordings, MMS and WhatsApp photos.

A webhook must answer within seconds, and Twilio's recording may not even
exist yet when the call ends, so downloads happen in the phone worker. Each
media is one ``twilio_media`` row (unique ``media_key``), written before the
complaint it belongs to, so a crash between the two loses nothing: the row
finds its complaint later by the complaint's dedup key.

A worker *claims* a due row by pushing its ``next_attempt_at`` forward (a
lease), so several workers never download the same media at once; a worker
that dies simply lets the lease run out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gateway.store.calls import insert_ignoring_duplicates
from gateway.store.db import writing
from gateway.store.intake import guarded
from gateway.store.tables import MediaRow, _now
from normalizer.contract import Attachment

PENDING, STORED, FAILED = "pending", "stored", "failed"
_ERROR_LIMIT = 2000


@dataclass(frozen=True)
class NewMedia:
    media_key: str
    complaint_key: str
    position: int
    url: str
    name: str | None = None
    declared_type: str | None = None


@dataclass(frozen=True)
class MediaTask:
    id: int
    media_key: str
    complaint_key: str
    url: str
    name: str | None
    declared_type: str | None
    attempts: int


@dataclass(frozen=True)
class MediaView:
    """What a complaint's message says about one media."""

    position: int
    url: str
    state: str
    attachment: Attachment | None


class MediaStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, items: list[NewMedia]) -> None:
        """Queue downloads; media already queued (a retried webhook) are left as they are."""
        if not items:
            return

        def action() -> None:
            now = datetime.now(UTC)
            with writing(self.engine) as session:
                for item in items:
                    insert_ignoring_duplicates(
                        session,
                        MediaRow,
                        {
                            "media_key": item.media_key,
                            "complaint_key": item.complaint_key,
                            "position": item.position,
                            "url": item.url,
                            "name": item.name,
                            "declared_type": item.declared_type,
                            "state": PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        },
                    )

        guarded(action)

    def claim_due(self, limit: int, lease: timedelta) -> list[MediaTask]:
        """Due downloads, each leased to this worker for ``lease``."""

        def action() -> list[MediaTask]:
            now = datetime.now(UTC)
            claimed: list[MediaTask] = []
            with writing(self.engine) as session:
                rows = session.scalars(
                    select(MediaRow)
                    .where(MediaRow.state == PENDING, MediaRow.next_attempt_at <= now)
                    .order_by(MediaRow.next_attempt_at, MediaRow.id)
                    .limit(limit)
                ).all()
                for row in rows:
                    won = session.execute(
                        update(MediaRow)
                        .where(
                            MediaRow.id == row.id,
                            MediaRow.state == PENDING,
                            MediaRow.next_attempt_at <= now,
                        )
                        .values(next_attempt_at=now + lease)
                    )
                    if won.rowcount:  # type: ignore[attr-defined]
                        claimed.append(_task(row))
            return claimed

        return guarded(action)

    def failed(self, task_id: int, error: str, retry_at: datetime) -> None:
        """One more failed attempt, to be tried again at ``retry_at``."""
        guarded(lambda: self._in_transaction(mark_failed(task_id, error, retry_at)))

    def _in_transaction(self, change: Callable[[Session], None]) -> None:
        with writing(self.engine) as session:
            change(session)


def mark_stored(task_id: int, attachment: Attachment) -> Callable[[Session], None]:
    """The change "downloaded and stored", for ``ComplaintRevisions.revise(first=...)``."""

    def change(session: Session) -> None:
        session.execute(
            update(MediaRow)
            .where(MediaRow.id == task_id, MediaRow.state == PENDING)
            .values(
                state=STORED,
                attempts=MediaRow.attempts + 1,
                attachment=attachment.model_dump(mode="json"),
                last_error=None,
                done_at=_now(),
            )
        )

    return change


def mark_failed(task_id: int, error: str, retry_at: datetime | None) -> Callable[[Session], None]:
    """The change "failed once more"; ``retry_at`` None: given up for good."""
    values: dict[str, object] = {
        "attempts": MediaRow.attempts + 1,
        "last_error": error[:_ERROR_LIMIT],
    }
    if retry_at is None:
        values.update(state=FAILED, done_at=_now())
    else:
        values["next_attempt_at"] = retry_at

    def change(session: Session) -> None:
        session.execute(
            update(MediaRow)
            .where(MediaRow.id == task_id, MediaRow.state == PENDING)
            .values(**values)
        )

    return change


def media_views(session: Session, complaint_key: str) -> list[MediaView]:
    """The media of a complaint in order, read inside the caller's transaction."""
    rows = session.scalars(
        select(MediaRow)
        .where(MediaRow.complaint_key == complaint_key)
        .order_by(MediaRow.position, MediaRow.id)
    )
    return [
        MediaView(
            position=row.position,
            url=row.url,
            state=row.state,
            attachment=None
            if row.attachment is None
            else Attachment.model_validate(row.attachment),
        )
        for row in rows
    ]


def _task(row: MediaRow) -> MediaTask:
    return MediaTask(
        id=row.id,
        media_key=row.media_key,
        complaint_key=row.complaint_key,
        url=row.url,
        name=row.name,
        declared_type=row.declared_type,
        attempts=row.attempts,
    )
