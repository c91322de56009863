"""What became of a complaint: status reports from case handling, its state, its notices.

case management --POST /v1/complaints/{reference}/status, or a
``ma.cashplus.complaint.status.v1`` message on ``complaints.status``-->
``gateway.cases`` -> **CaseStore.report** (one transaction: the history
row, the complaint's state, a pending notice for an extension) -> the case
worker sends the notice (``notices`` table).

The rules are data (``TRANSITIONS``): a complaint starts ``received``;
``in_progress``, ``extended`` (a longer delay, with its new answer
deadline), ``answered`` and ``closed`` follow. ``answered`` can only be
closed and ``closed`` is final: a customer who contests an answer makes a
new complaint (a follow-up, or through the CMMB), so the register's
``answered_at`` never moves back. ``closed`` without ``answered`` is allowed
(withdrawn, a duplicate): ``answered_at`` stays empty, never filled by the
closing. A report repeated (same complaint, status and ``at``, by either
path) is the same fact and changes nothing; so is the status the complaint
already has told again with a later ``at`` (an extension: to the same
deadline): nothing is recorded and no notice is sent.

Also here: acknowledgements made by hand (a phone call, a registered
letter) for complaints the automatic acknowledgement left to staff.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.store.acks import FAILED, SENT, SKIPPED
from gateway.store.db import reading, writing
from gateway.store.intake import guarded
from gateway.store.tables import (
    AcknowledgementRow,
    ComplaintRow,
    ComplaintStateRow,
    ComplaintStatusRow,
    NoticeRow,
)
from normalizer.errors import InputRejected

RECEIVED, IN_PROGRESS, EXTENDED, ANSWERED, CLOSED = (
    "received",
    "in_progress",
    "extended",
    "answered",
    "closed",
)
STATUSES = (IN_PROGRESS, EXTENDED, ANSWERED, CLOSED)
# Current status -> the statuses that may follow it.
TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({IN_PROGRESS, EXTENDED, ANSWERED, CLOSED}),
    IN_PROGRESS: frozenset({EXTENDED, ANSWERED, CLOSED}),
    EXTENDED: frozenset({IN_PROGRESS, EXTENDED, ANSWERED, CLOSED}),
    ANSWERED: frozenset({CLOSED}),
    CLOSED: frozenset(),
}
# Why an answer takes longer: a code the customer's notice words in their language.
EXTENSION_REASONS = ("investigation", "third_party", "documents")
# A report's ``at`` may run this far ahead of our clock (the sender's clock drifts).
CLOCK_SKEW = timedelta(minutes=5)
# Notices: pending -> sent | queued (a letter to post) | failed | skipped.
PENDING, NOTICE_SENT, NOTICE_QUEUED, NOTICE_FAILED, NOTICE_SKIPPED = (
    "pending",
    "sent",
    "queued",
    "failed",
    "skipped",
)
EXTENSION_NOTICE = "extension"
# How an acknowledgement made by hand went out.
BY_HAND_METHODS = ("call", "registered", "in_person", "email", "letter")
_NOTE_LIMIT = 2000


class StatusRefused(InputRejected):
    """A status report the complaint cannot take; ``http_status`` 404, 409 or 422."""

    def __init__(self, http_status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.field = field


@dataclass(frozen=True)
class StatusReport:
    """One report as case handling sent it (validated for shape by the caller)."""

    status: str
    at: datetime
    note: str | None = None
    answer_due_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StatusEntry:
    status: str
    at: datetime
    note: str | None
    answer_due_at: datetime | None
    reason: str | None
    source: str
    actor: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class CaseState:
    """A complaint's handling: its status now, and every report in order."""

    complaint_id: str
    reference: str
    status: str = RECEIVED
    at: datetime | None = None
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    extended_until: datetime | None = None
    history: tuple[StatusEntry, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Reported:
    """The outcome of ``CaseStore.report``: the state after it, and whether it was new."""

    state: CaseState
    created: bool


@dataclass(frozen=True)
class Notice:
    id: str
    complaint_id: str
    reference: str
    kind: str
    status: str
    attempts: int
    method: str | None
    recipient: str | None
    message_id: str | None
    answer_due_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class LeftToStaff:
    """A complaint whose acknowledgement was left to staff (skipped, or failed)."""

    complaint_id: str
    reference: str
    channel: str
    received_at: datetime
    ack_due_at: datetime
    ack_status: str
    reason: str | None


def dedup_key(complaint_id: str, status: str, at: datetime) -> str:
    """The same (complaint, status, moment) is one fact, whichever path reported it."""
    return f"{complaint_id}:{status}:{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


class CaseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- status reports ------------------------------------------------------

    def report(
        self,
        reference: str,
        report: StatusReport,
        *,
        source: str,
        actor: str | None,
        event_id: str | None = None,
        now: datetime | None = None,
    ) -> Reported:
        """Record one report; ``StatusRefused`` (404, 409, 422) if the complaint cannot take it."""
        return guarded(
            lambda: self._report(reference, report, source, actor, event_id, now or _now())
        )

    def _report(  # noqa: PLR0917
        self,
        reference: str,
        report: StatusReport,
        source: str,
        actor: str | None,
        event_id: str | None,
        now: datetime,
    ) -> Reported:
        try:
            with writing(self.engine) as session:
                complaint = _locked_complaint(session, reference)
                key = dedup_key(complaint.id, report.status, report.at)
                state = session.get(ComplaintStateRow, complaint.id)
                if session.scalar(
                    select(ComplaintStatusRow.id).where(ComplaintStatusRow.dedup_key == key)
                ):
                    created = False
                else:
                    _check_time(report, complaint, now)
                    # The status it already has, told again later: no new fact.
                    created = not _repeats(state, report)
                    if created:
                        _check(report, complaint, state, now)
                        _record_report(
                            session,
                            complaint,
                            state,
                            report,
                            now,
                            key=key,
                            source=source,
                            actor=actor,
                            event_id=event_id,
                        )
        except IntegrityError:
            # The same report committed meanwhile by another process: it is the same fact.
            state_now = self.state(reference)
            if state_now is None:
                raise
            return Reported(state_now, False)
        found = self.state(reference)
        assert found is not None  # just written
        return Reported(found, created)

    def state(self, reference: str) -> CaseState | None:
        """The complaint's handling, or None when no complaint has that reference."""

        def action() -> CaseState | None:
            with reading(self.engine) as session:
                complaint_id = session.scalar(
                    select(ComplaintRow.id).where(ComplaintRow.reference == reference)
                )
                if complaint_id is None:
                    return None
                return _state_of(session, complaint_id, reference)

        return guarded(action)

    # -- notices ------------------------------------------------------------

    def due_notices(self, limit: int = 10, now: datetime | None = None) -> list[Notice]:
        """Pending notices whose time has come, oldest first."""
        moment = now or _now()
        with reading(self.engine) as session:
            rows = session.execute(
                select(NoticeRow, ComplaintStatusRow)
                .join(ComplaintStatusRow, ComplaintStatusRow.id == NoticeRow.status_id)
                .where(NoticeRow.status == PENDING, NoticeRow.next_attempt_at <= moment)
                .order_by(NoticeRow.next_attempt_at)
                .limit(limit)
            ).all()
        return [_notice(row, status) for row, status in rows]

    def take_notice(self, notice_id: str, lease: timedelta) -> bool:
        """Take a due notice for ``lease`` (another worker leaves it alone meanwhile)."""
        now = _now()
        with writing(self.engine) as session:
            taken = session.execute(
                update(NoticeRow)
                .where(
                    NoticeRow.id == notice_id,
                    NoticeRow.status == PENDING,
                    NoticeRow.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + lease)
            )
        return bool(getattr(taken, "rowcount", 0))

    def plan_notice(self, notice_id: str, method: str, recipient: str, message_id: str) -> None:
        """The method and recipient chosen, and the Message-ID drawn once for every try."""
        self._update_notice(notice_id, method=method, recipient=recipient, message_id=message_id)

    def notice_attempt_failed(self, notice_id: str, retry_at: datetime, detail: str) -> int:
        """Count a failed try and set the next; returns the attempts so far."""
        with writing(self.engine) as session:
            row = session.get(NoticeRow, notice_id)
            if row is None:
                return 0
            row.attempts += 1
            row.next_attempt_at = retry_at
            row.detail = detail[:_NOTE_LIMIT]
            return row.attempts

    def finish_notice(
        self,
        notice_id: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        sent_at: datetime | None = None,
        document: str | None = None,
        event_id: str | None = None,
    ) -> None:
        self._update_notice(
            notice_id,
            status=status,
            reason=reason,
            detail=detail and detail[:_NOTE_LIMIT],
            sent_at=sent_at,
            document=document,
            event_id=event_id,
            next_attempt_at=None,
        )

    def notices_of(self, reference: str) -> list[Notice]:
        with reading(self.engine) as session:
            rows = session.execute(
                select(NoticeRow, ComplaintStatusRow)
                .join(ComplaintStatusRow, ComplaintStatusRow.id == NoticeRow.status_id)
                .where(NoticeRow.reference == reference)
                .order_by(NoticeRow.created_at)
            ).all()
        return [_notice(row, status) for row, status in rows]

    def _update_notice(self, notice_id: str, **values: object) -> None:
        with writing(self.engine) as session:
            session.execute(update(NoticeRow).where(NoticeRow.id == notice_id).values(**values))

    # -- acknowledgements made by hand --------------------------------------

    def left_to_staff(self, limit: int = 50, now: datetime | None = None) -> list[LeftToStaff]:
        """Complaints whose acknowledgement was skipped or failed, not yet made by hand.

        Oldest deadline first; only those received in the last 40 days and
        not answered or closed (past that, the acknowledgement is moot).
        """
        since = (now or _now()) - timedelta(days=40)
        with reading(self.engine) as session:
            rows = session.execute(
                select(
                    ComplaintRow.id,
                    ComplaintRow.reference,
                    ComplaintRow.channel,
                    ComplaintRow.received_at,
                    ComplaintRow.ack_due_at,
                    AcknowledgementRow.status,
                    AcknowledgementRow.reason,
                )
                .join(AcknowledgementRow, AcknowledgementRow.complaint_id == ComplaintRow.id)
                .outerjoin(ComplaintStateRow, ComplaintStateRow.complaint_id == ComplaintRow.id)
                .where(
                    AcknowledgementRow.status.in_((SKIPPED, FAILED)),
                    ComplaintRow.received_at >= since,
                    or_(
                        ComplaintStateRow.status.is_(None),
                        ComplaintStateRow.status.in_((IN_PROGRESS, EXTENDED)),
                    ),
                )
                .order_by(ComplaintRow.ack_due_at, ComplaintRow.reference)
                .limit(limit)
            ).all()
        return [LeftToStaff(*row) for row in rows]

    def acknowledge_by_hand(
        self,
        reference: str,
        *,
        method: str,
        at: datetime,
        proof: str | None,
        note: str | None,
        staff: str,
        event_id: str,
    ) -> None:
        """Mark a complaint left to staff as acknowledged by hand (``ack.sent`` already recorded).

        ``StatusRefused`` 404 (no such complaint) or 409 (its acknowledgement
        was not left to staff, or was already made).
        """
        with writing(self.engine) as session:
            complaint_id = session.scalar(
                select(ComplaintRow.id).where(ComplaintRow.reference == reference)
            )
            if complaint_id is None:
                raise StatusRefused(404, "not_found", f"no complaint with reference {reference}")
            changed = session.execute(
                update(AcknowledgementRow)
                .where(
                    and_(
                        AcknowledgementRow.complaint_id == complaint_id,
                        AcknowledgementRow.status.in_((SKIPPED, FAILED)),
                    )
                )
                .values(
                    status=SENT,
                    method=method,
                    sent_at=at,
                    provider_id=(proof or None) and proof[:64],
                    detail=f"by hand ({staff}){': ' + note if note else ''}"[:_NOTE_LIMIT],
                    event_id=event_id,
                    updated_at=_now(),
                    retry_at=None,
                )
            )
            if not getattr(changed, "rowcount", 0):
                raise StatusRefused(
                    409,
                    "not_left_to_staff",
                    f"the acknowledgement of {reference} was not left to staff",
                )


def _now() -> datetime:
    return datetime.now(UTC)


def _locked_complaint(session: Session, reference: str) -> ComplaintRow:
    query = select(ComplaintRow).where(ComplaintRow.reference == reference)
    if session.get_bind().dialect.name == "postgresql":
        # Two reports of one complaint decide one after the other.
        query = query.with_for_update()
    complaint = session.scalar(query)
    if complaint is None:
        raise StatusRefused(404, "not_found", f"no complaint with reference {reference}")
    return complaint


def _check_time(report: StatusReport, complaint: ComplaintRow, now: datetime) -> None:
    """``at`` between the complaint's receipt and now (a repeat is held to it too)."""
    if report.at > now + CLOCK_SKEW:
        raise StatusRefused(422, "at_in_future", "`at` is in the future", "at")
    if report.at < complaint.received_at:
        raise StatusRefused(
            422, "at_before_received", "`at` is before the complaint was received", "at"
        )


def _repeats(state: ComplaintStateRow | None, report: StatusReport) -> bool:
    """The complaint already has this status (an extension: to the same deadline).

    Case handling that tells the status again with a later ``at`` (a resend,
    a second system) states no new fact: nothing is recorded, nothing sent.
    """
    if state is None or state.status != report.status:
        return False
    if report.status != EXTENDED:
        return True
    return report.answer_due_at is not None and report.answer_due_at == state.extended_until


def _check(
    report: StatusReport, complaint: ComplaintRow, state: ComplaintStateRow | None, now: datetime
) -> None:
    """The report's transition, against the complaint as it stands."""
    current = state.status if state is not None else RECEIVED
    if report.status not in TRANSITIONS[current]:
        raise StatusRefused(
            409,
            "transition_refused",
            f"a complaint {current} cannot become {report.status}",
            "status",
        )
    if state is not None and report.at < state.at:
        raise StatusRefused(
            409,
            "out_of_order",
            f"`at` is before the last status ({current}) of this complaint",
            "at",
        )
    if report.status == EXTENDED:
        _check_extension(report, complaint, state)


def _check_extension(
    report: StatusReport, complaint: ComplaintRow, state: ComplaintStateRow | None
) -> None:
    if report.answer_due_at is None:
        raise StatusRefused(
            422,
            "answer_due_at_missing",
            "`extended` needs the new answer deadline",
            "answer_due_at",
        )
    current_due = (state.extended_until if state else None) or complaint.answer_due_at
    if report.answer_due_at <= max(current_due, report.at):
        raise StatusRefused(
            422,
            "answer_due_at_not_later",
            "the new answer deadline must be later than the current one",
            "answer_due_at",
        )


def _record_report(
    session: Session,
    complaint: ComplaintRow,
    state: ComplaintStateRow | None,
    report: StatusReport,
    now: datetime,
    *,
    key: str,
    source: str,
    actor: str | None,
    event_id: str | None,
) -> None:
    """The complaint's new state, the history row, and an extension's pending notice."""
    _apply(session, complaint, state, report, now)
    row = ComplaintStatusRow(
        complaint_id=complaint.id,
        reference=complaint.reference,
        status=report.status,
        at=report.at,
        note=(report.note or None) and report.note[:_NOTE_LIMIT],
        answer_due_at=report.answer_due_at,
        reason=report.reason,
        source=source,
        actor=actor,
        dedup_key=key,
        event_id=event_id,
        recorded_at=now,
    )
    session.add(row)
    session.flush()
    if report.status == EXTENDED:
        session.add(_pending_notice(complaint, row, now))


def _apply(
    session: Session,
    complaint: ComplaintRow,
    state: ComplaintStateRow | None,
    report: StatusReport,
    now: datetime,
) -> None:
    if state is None:
        state = ComplaintStateRow(
            complaint_id=complaint.id, reference=complaint.reference, status=RECEIVED, at=report.at
        )
        session.add(state)
    state.status = report.status
    state.at = report.at
    state.updated_at = now
    if report.status == ANSWERED:
        state.answered_at = report.at
    elif report.status == CLOSED:
        state.closed_at = report.at
    elif report.status == EXTENDED:
        state.extended_until = report.answer_due_at


def _pending_notice(
    complaint: ComplaintRow, status: ComplaintStatusRow, now: datetime
) -> NoticeRow:
    return NoticeRow(
        id=str(uuid.uuid4()),
        complaint_id=complaint.id,
        reference=complaint.reference,
        kind=EXTENSION_NOTICE,
        status_id=status.id,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def _state_of(session: Session, complaint_id: str, reference: str) -> CaseState:
    state = session.get(ComplaintStateRow, complaint_id)
    history = tuple(
        StatusEntry(
            status=row.status,
            at=row.at,
            note=row.note,
            answer_due_at=row.answer_due_at,
            reason=row.reason,
            source=row.source,
            actor=row.actor,
            recorded_at=row.recorded_at,
        )
        for row in session.scalars(
            select(ComplaintStatusRow)
            .where(ComplaintStatusRow.complaint_id == complaint_id)
            .order_by(ComplaintStatusRow.at, ComplaintStatusRow.id)
        )
    )
    if state is None:
        return CaseState(complaint_id, reference, history=history)
    return CaseState(
        complaint_id,
        reference,
        status=state.status,
        at=state.at,
        answered_at=state.answered_at,
        closed_at=state.closed_at,
        extended_until=state.extended_until,
        history=history,
    )


def _notice(row: NoticeRow, status: ComplaintStatusRow) -> Notice:
    return Notice(
        id=row.id,
        complaint_id=row.complaint_id,
        reference=row.reference,
        kind=row.kind,
        status=row.status,
        attempts=row.attempts,
        method=row.method,
        recipient=row.recipient,
        message_id=row.message_id,
        answer_due_at=status.answer_due_at,
        reason=status.reason,
    )
