"""Captured inputs: what an edge makes durable before it answers, and the runners' claims.

edge (SMTP DATA) -> **CaptureStore.capture** (the ``intake`` row, with the
bytes of a small input, in one group commit with concurrent callers; a
larger input's blob written and fsynced first) -> the edge answers (250 with
the reference) -> a normalizer runner (``gateway.lib.normalize_runner``)
``claim``s captured rows (their inline bytes written out as blobs then),
normalizes them and records their complaints (id = the capture's id, the
reference and deadlines it was given), then ``finish``es them.

Why small inputs ride in the row: the edge's answer waits for its group's
fsyncs, and a blob costs two more than the row (the file's, its folder's)
on top of the database's. A mail, a form post or a webhook is a few
kilobytes; one fsync per group, the database's, makes them durable. The
runner writes their blobs a whole batch at a time, where the fsyncs are
shared by a hundred inputs instead of a handful.

The legal record starts at capture: the raw bytes, their receipt time, the
channel's identifiers, the reference and both deadlines. A repeat (same
dedup key) answers the first capture's reference; a key already recorded as
a complaint before captures existed answers that complaint's.

Claims: a runner takes rows whose claim is free or expired, in receipt
order, and holds them for ``lease`` seconds (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so runners on several hosts share the work; SQLite has one
writer at a time). A runner that dies leaves its claim to expire; the next
claim takes the rows again and, the complaint's id being the capture's, the
store answers the complaint already written: nothing lost, nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gateway.store.blobs import SCHEME, BlobStore, StagedBlob, StoredBlob, settle
from gateway.store.complaint_rows import stored_under
from gateway.store.db import committing, lock_timeout, read_connection
from gateway.store.groupcommit import GroupCommit
from gateway.store.intake import GROUP_MAX_BATCH, StoreUnavailable, guarded, store_error
from gateway.store.tables import ComplaintRow, IntakeRow
from normalizer.deadlines import Deadlines
from normalizer.reference import new_reference

log = logging.getLogger("intake.store")

CAPTURED = "captured"
DONE = "done"
QUARANTINED = "quarantined"
# Times a row is tried before the runner gives up and quarantines it.
MAX_ATTEMPTS = 5
_REFERENCE_ATTEMPTS = 8
# Inputs up to this size are committed inside their capture row (see above).
INLINE_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Capture:
    """An input as an edge received it, before any interpretation."""

    channel: str
    data: bytes
    content_type: str
    received_at: datetime
    # One per source event: the same key again is the same input.
    dedup_key: str
    source_ids: dict[str, Any] = field(default_factory=dict)
    # What the sender sent under the key (an API body's hash), to tell a retry from a reuse.
    request_hash: str | None = None
    # Whether a complaint recorded before captures existed may hold the key (the
    # API's, a message's); False for a key only captures use (a mail's bytes'
    # hash): no look-up among complaints on the edge's path.
    complaints_may_hold_key: bool = True


@dataclass(frozen=True)
class Captured:
    """A capture's record: what the edge answers with, what a runner reads."""

    id: str
    channel: str
    reference: str
    received_at: datetime
    ack_due_at: datetime
    answer_due_at: datetime
    # False: a repeat; ``reference`` is the first capture's (or complaint's).
    created: bool = True
    stored_at: str = ""
    content_type: str = ""
    source_ids: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    request_hash: str | None = None
    # The bytes, when the row holds them (read them with ``CaptureStore.data_of``).
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Finished:
    """What a runner made of one claimed row."""

    id: str
    # complaint, repeat, event, triaged, bounce, quarantined
    outcome: str
    result_id: str | None = None

    @property
    def state(self) -> str:
        return QUARANTINED if self.outcome == QUARANTINED else DONE


@dataclass(frozen=True)
class StageBacklog:
    """Captured rows of one channel not normalized yet, and the oldest one's receipt."""

    channel: str
    pending: int
    oldest: datetime | None


@dataclass(eq=False)
class _Queued:
    capture: Capture
    deadline: float  # time.monotonic()
    # A large input's bytes written and fsynced: by the batch's leader (one pass
    # for the whole batch), or by the caller beforehand (``capture_many``).
    staged: StagedBlob | None = None

    @property
    def inline(self) -> bool:
        return _inline(self.capture.data)

    def stored(self) -> StoredBlob:
        """Where the bytes are, or will be once a runner writes them out (content-addressed)."""
        if self.staged is not None:
            return self.staged.blob
        if not self.inline:
            raise RuntimeError("capture committed before its bytes were staged")
        data = self.capture.data
        digest = hashlib.sha256(data).hexdigest()
        return StoredBlob(sha256=digest, size=len(data), location=SCHEME + digest)


class CaptureStore:
    def __init__(
        self, engine: Engine, blobs: BlobStore, deadlines: Callable[[datetime], Deadlines]
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.deadlines = deadlines
        self.group: GroupCommit[_Queued, Captured] = GroupCommit(
            self._commit_batch, max_batch=GROUP_MAX_BATCH
        )
        # Set after each commit of captures: a runner in this process wakes at once.
        self.arrived = threading.Event()

    # -- the edges ----------------------------------------------------------
    def capture(self, item: Capture) -> Captured:
        """Durable when it returns: the bytes fsynced, the row committed (or the first one's)."""

        def action() -> Captured:
            queued = _Queued(item, time.monotonic() + lock_timeout(self.engine))
            captured = self.group.submit(queued)
            self.arrived.set()
            return captured

        return guarded(action)

    def capture_many(self, items: Sequence[Capture]) -> list[Captured | Exception]:
        """Several captures in one group commit (an IMAP fetch); one outcome per item.

        All the bytes are written, then fsynced (one journal commit serves them
        all); an item's outcome is its ``Captured`` or its own error
        (``StoreUnavailable``), the others are committed all the same.
        """
        if not items:
            return []

        def action() -> list[Captured | Exception]:
            deadline = time.monotonic() + lock_timeout(self.engine)
            queued = [_Queued(item, deadline) for item in items]
            large = [entry for entry in queued if not entry.inline]
            for entry, stage in zip(
                large, self.blobs.stage_many([entry.capture.data for entry in large]), strict=True
            ):
                entry.staged = stage
            outcomes = self.group.submit_many(queued)
            self.arrived.set()
            return [store_error(outcome) for outcome in outcomes]

        return guarded(action)

    def _commit_batch(self, queued: Sequence[_Queued]) -> list[Captured | Exception]:
        # The batch's bytes written, then fsynced together: concurrent edges share
        # the journal commits instead of each waiting for its own.
        unstaged = [entry for entry in queued if entry.staged is None and not entry.inline]
        staged = self.blobs.stage_many([entry.capture.data for entry in unstaged])
        for entry, stage in zip(unstaged, staged, strict=True):
            entry.staged = stage
        settle({entry.staged.folder for entry in queued if entry.staged is not None})
        deadline = min(entry.deadline for entry in queued)
        if len(queued) > 1:
            try:
                with committing(self.engine, lock_wait=_left(deadline)) as connection:
                    return list(self._write(connection, queued))
            except IntegrityError as exc:  # a reference drawn twice, a concurrent repeat
                log.debug("capture batch of %s refused (%s): one by one", len(queued), exc.orig)
        outcomes: list[Captured | Exception] = []
        for entry in queued:
            try:
                outcomes.append(self._commit_one(entry, deadline))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _commit_one(self, entry: _Queued, deadline: float) -> Captured:
        for _attempt in range(_REFERENCE_ATTEMPTS):
            try:
                with committing(self.engine, lock_wait=_left(deadline)) as connection:
                    (captured,) = self._write(connection, [entry])
                return captured
            except IntegrityError as exc:
                log.debug("capture refused: %s", exc.orig)
                with read_connection(self.engine) as connection:
                    twin = _known_under(connection, [entry.capture])
                if entry.capture.dedup_key in twin:  # a concurrent edge won the race
                    return twin[entry.capture.dedup_key]
        raise StoreUnavailable("could not draw a free reference")

    def _write(self, connection: Connection, queued: Sequence[_Queued]) -> list[Captured]:
        known = _known_under(connection, [entry.capture for entry in queued])
        references = _free_references(connection, len(queued))
        first: dict[str, Captured] = {}
        rows: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        outcomes: list[Captured] = []
        for entry, reference in zip(queued, references, strict=True):
            item = entry.capture
            earlier = known.get(item.dedup_key) or first.get(item.dedup_key)
            if earlier is not None:
                outcomes.append(_repeat(earlier))
                continue
            due = self.deadlines(item.received_at)
            stored = entry.stored()
            captured = Captured(
                id=str(uuid.uuid4()),
                channel=item.channel,
                reference=reference,
                received_at=item.received_at,
                ack_due_at=due.ack_due_at,
                answer_due_at=due.answer_due_at,
                stored_at=stored.location,
                content_type=item.content_type,
                source_ids=dict(item.source_ids),
                request_hash=item.request_hash,
            )
            first[item.dedup_key] = captured
            outcomes.append(captured)
            rows.append(
                {
                    "id": captured.id,
                    "channel": item.channel,
                    "state": CAPTURED,
                    "received_at": item.received_at,
                    "dedup_key": item.dedup_key,
                    "request_hash": item.request_hash,
                    "reference": reference,
                    "ack_due_at": due.ack_due_at,
                    "answer_due_at": due.answer_due_at,
                    "stored_at": stored.location,
                    "sha256": stored.sha256,
                    "size": stored.size,
                    "data": item.data if entry.staged is None else None,
                    "content_type": item.content_type,
                    "source_ids": captured.source_ids,
                    "attempts": 0,
                    "created_at": now,
                }
            )
        if rows:
            connection.execute(insert(IntakeRow), rows)
        return outcomes

    # -- the runners ----------------------------------------------------------
    def claim(
        self,
        worker: str,
        *,
        limit: int,
        lease: float,
        channels: Collection[str],
    ) -> list[Captured]:
        """Up to ``limit`` captured rows of ``channels``, claim free or expired, oldest first."""

        def action() -> list[Captured]:
            now = datetime.now(UTC)
            free = or_(IntakeRow.claimed_until.is_(None), IntakeRow.claimed_until < now)
            query = (
                select(IntakeRow)
                .where(IntakeRow.state == CAPTURED, IntakeRow.channel.in_(list(channels)), free)
                .order_by(IntakeRow.received_at, IntakeRow.created_at)
                .limit(limit)
            )
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            with committing(self.engine) as connection:
                rows = connection.execute(query).mappings().all()
                if not rows:
                    return []
                ids = [row["id"] for row in rows]
                connection.execute(
                    update(IntakeRow)
                    .where(IntakeRow.id.in_(ids))
                    .values(
                        claimed_until=now + timedelta(seconds=lease),
                        claimed_by=worker[:64],
                        attempts=IntakeRow.attempts + 1,
                    )
                )
            return [_captured(row, attempts=row["attempts"] + 1) for row in rows]

        claimed = guarded(action)
        self._write_out(claimed)
        return claimed

    def _write_out(self, claimed: Sequence[Captured]) -> None:
        """The claimed rows' inline bytes written as their blobs, fsynced, for the evidence.

        Before the step runs: the complaint's evidence, a quarantine item and a
        replay all read a blob, as for any input. The column is emptied when
        the row is finished; a runner that dies before that writes them again
        (the same content, the same name).
        """
        inline = [item for item in claimed if item.data is not None]
        if not inline:
            return
        try:
            staged = self.blobs.stage_many([item.data or b"" for item in inline])
            settle({stage.folder for stage in staged})
        except OSError as exc:  # the rows stay claimed: taken again when the claim expires
            raise StoreUnavailable(f"could not write captured bytes: {exc}") from exc

    def finish(self, finished: Sequence[Finished]) -> None:
        """Mark rows done or quarantined, their identifiers left to the evidence row."""
        if not finished:
            return

        def action() -> None:
            now = datetime.now(UTC)
            done = [item for item in finished if item.state == DONE]
            kept = [item for item in finished if item.state != DONE]
            with committing(self.engine) as connection:
                # One statement per kind, executed for many rows (one round trip each).
                if done:
                    connection.execute(_FINISH_DONE, [_finish_values(item, now) for item in done])
                if kept:
                    connection.execute(_FINISH_KEPT, [_finish_values(item, now) for item in kept])

        guarded(action)

    def release(self, capture_id: str, retry_in: float) -> None:
        """Give a claimed row back, to be tried again in ``retry_in`` seconds (our failure)."""

        def action() -> None:
            until = datetime.now(UTC) + timedelta(seconds=retry_in)
            with committing(self.engine) as connection:
                connection.execute(
                    update(IntakeRow)
                    .where(IntakeRow.id == capture_id, IntakeRow.state == CAPTURED)
                    .values(claimed_until=until, claimed_by=None)
                )

        guarded(action)

    def requeue(self, capture_id: str) -> Captured | None:
        """A quarantined capture made ``captured`` again (a replay); None if there is none."""

        def action() -> Captured | None:
            with committing(self.engine) as connection:
                changed = connection.execute(
                    update(IntakeRow)
                    .where(IntakeRow.id == capture_id, IntakeRow.state != CAPTURED)
                    .values(
                        state=CAPTURED,
                        outcome=None,
                        result_id=None,
                        finished_at=None,
                        claimed_until=None,
                        claimed_by=None,
                        attempts=0,
                    )
                ).rowcount
                if not changed:
                    return None
            return self.get(capture_id)

        return guarded(action)

    def data_of(self, captured: Captured) -> bytes:
        """The bytes the edge captured (the runners' and replays' one way to read them)."""
        if captured.data is not None:
            return captured.data
        return self.blobs.get(captured.stored_at)

    def get(self, capture_id: str) -> Captured | None:
        return self._one(IntakeRow.id == capture_id)

    def by_reference(self, reference: str) -> Captured | None:
        """The capture given ``reference`` (normalized or not)."""
        return self._one(IntakeRow.reference == reference)

    def _one(self, where: ColumnElement[bool]) -> Captured | None:
        with read_connection(self.engine) as connection:
            row = connection.execute(select(IntakeRow).where(where)).mappings().first()
        return None if row is None else _captured(row)

    def state_of(self, capture_id: str) -> tuple[str, str | None, str | None] | None:
        """``(state, outcome, result_id)`` of a capture."""
        with read_connection(self.engine) as connection:
            row = connection.execute(
                select(IntakeRow.state, IntakeRow.outcome, IntakeRow.result_id).where(
                    IntakeRow.id == capture_id
                )
            ).first()
        return None if row is None else (row[0], row[1], row[2])

    def backlog(self) -> list[StageBacklog]:
        """Per channel: captured rows waiting for a runner, and the oldest one's receipt."""
        query = (
            select(IntakeRow.channel, func.count(), func.min(IntakeRow.received_at))
            .where(IntakeRow.state == CAPTURED)
            .group_by(IntakeRow.channel)
        )
        with read_connection(self.engine) as connection:
            rows = connection.execute(query).all()
        return [
            StageBacklog(channel, int(count), _aware(oldest)) for channel, count, oldest in rows
        ]

    def outcomes(self) -> dict[str, int]:
        """How many captures became what (``pending``: not normalized yet)."""
        query = select(IntakeRow.outcome, func.count()).group_by(IntakeRow.outcome)
        with read_connection(self.engine) as connection:
            rows = connection.execute(query).all()
        return {outcome or "pending": int(count) for outcome, count in rows}


_FINISH_COLUMNS: dict[str, Any] = {
    "state": bindparam("new_state"),
    "outcome": bindparam("new_outcome"),
    "result_id": bindparam("new_result_id"),
    "finished_at": bindparam("new_finished_at"),
    "claimed_until": None,
    "claimed_by": None,
    # Written out as a blob when the row was claimed (``_write_out``).
    "data": None,
}
_FINISH_DONE = (
    update(IntakeRow)
    .where(IntakeRow.id == bindparam("capture_id"))
    .values(**_FINISH_COLUMNS, source_ids={})
)
# A quarantined capture keeps its envelope until the quarantine item is erased or purged.
_FINISH_KEPT = (
    update(IntakeRow).where(IntakeRow.id == bindparam("capture_id")).values(**_FINISH_COLUMNS)
)


def _finish_values(item: Finished, now: datetime) -> dict[str, Any]:
    return {
        "capture_id": item.id,
        "new_state": item.state,
        "new_outcome": item.outcome,
        "new_result_id": item.result_id,
        "new_finished_at": now,
    }


def _known_under(connection: Connection, items: Sequence[Capture]) -> dict[str, Captured]:
    """Captures, then complaints recorded before captures existed, under these items' keys."""
    keys = {item.dedup_key for item in items}
    if not keys:
        return {}
    rows = connection.execute(select(IntakeRow).where(IntakeRow.dedup_key.in_(keys))).mappings()
    known = {row["dedup_key"]: _captured(row) for row in rows}
    older = {item.dedup_key for item in items if item.complaints_may_hold_key} - known.keys()
    for key, written in stored_under(connection, older).items():
        message = written.message
        known[key] = Captured(
            id=message.id,
            channel=message.channel.value,
            reference=message.reference,
            received_at=message.received_at,
            ack_due_at=message.ack_due_at,
            answer_due_at=message.answer_due_at,
            created=False,
            request_hash=written.request_hash,
        )
    return known


def _free_references(connection: Connection, count: int) -> list[str]:
    """``count`` new references no capture and no complaint holds (the unique index decides)."""
    drawn = [new_reference() for _ in range(count)]
    taken = set(
        connection.scalars(select(IntakeRow.reference).where(IntakeRow.reference.in_(drawn)))
    ) | set(
        connection.scalars(select(ComplaintRow.reference).where(ComplaintRow.reference.in_(drawn)))
    )
    return [new_reference() if reference in taken else reference for reference in drawn]


def _repeat(earlier: Captured) -> Captured:
    return replace(earlier, created=False)


def _captured(row: Any, *, attempts: int | None = None) -> Captured:
    return Captured(
        id=row["id"],
        channel=row["channel"],
        reference=row["reference"],
        received_at=row["received_at"],  # aware UTC: the column's type makes them so
        ack_due_at=row["ack_due_at"],
        answer_due_at=row["answer_due_at"],
        created=True,
        stored_at=row["stored_at"],
        content_type=row["content_type"],
        source_ids=dict(row["source_ids"] or {}),
        attempts=row["attempts"] if attempts is None else attempts,
        request_hash=row["request_hash"],
        data=row["data"],
    )


def _inline(data: bytes) -> bool:
    return len(data) <= INLINE_MAX_BYTES


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
