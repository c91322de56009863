"""The acknowledgements table: one row per complaint, what happened to its acknowledgement.

``gateway.acks`` (``Acknowledger``, ``Mailroom``, ``intake ack``) ->
``Store.acks`` -> **AckStore** (claim a place under the daily cap, finish,
skip; count attempts; defer to the workers' poll; re-open failed rows and
bring deferred ones forward for ``intake ack retry``; letters waiting for
the mailroom; complaints still unacknowledged) -> the ``acknowledgements``
table (migrations 0007, 0009).

The row is unique per complaint: a complaint delivered twice finds its row
and is not acknowledged twice. A row is ``sending`` while a message is on
its way, then ``sent`` or ``failed``; a letter is ``queued`` until the
mailroom marks it posted; ``skipped`` says why nothing was sent. A
``sending`` row without a method is undecided: something went wrong before
a method was chosen, and the row only counts the attempts.

A ``sending`` row with ``retry_at`` is the workers' poll's, not the queue's:
deferred (it kept failing on our side; ``reason`` is the last failure's
code, and the poll tries it at ``retry_at``), re-opened by ``intake ack
retry`` (due at once), or in a worker's hands until ``retry_at`` (a lease;
``reason`` cleared). Only a deferred row, never one in a worker's hands,
is brought forward by ``intake ack retry``.

The per-recipient daily cap is exact with any number of workers: the count
and the row that takes the place are one transaction, serialized per
recipient (SQLite: its single writer, ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock on the recipient).

Global daily budgets (SMS and WhatsApp together; e-mail) are exact the same
way: the claim also counts today's rows of the budget's methods and takes
the place in that transaction, serialized per budget (PostgreSQL: an
advisory lock on the budget's name, taken before the recipient's, always
in that order). The claim that takes a budget's last place says so, once
per day whatever the number of workers (the acknowledger logs it).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.store.db import reading, writing
from gateway.store.deliveries import NOT_DELIVERED, UNDELIVERED
from gateway.store.intake import guarded
from gateway.store.tables import AckDeliveryRow, AcknowledgementRow, ComplaintRow, EventRow
from normalizer.contract import ComplaintMessage

SENDING, SENT, QUEUED, FAILED, SKIPPED = "sending", "sent", "queued", "failed", "skipped"
# UNDELIVERED: sent, then reported undelivered (a Twilio status callback, a bounce):
# the workers' poll sends it by the next method (``retry_at``), or records it failed.
# The address or number was refused for good: sending again reaches the same refusal,
# so ``intake ack retry`` re-opens these only when ``--reason`` names them.
RECIPIENT_REFUSED = "recipient_refused"
PERMANENT_REASONS = frozenset({RECIPIENT_REFUSED})
# States that count against a recipient's daily allowance.
COUNTED = (SENDING, SENT, QUEUED, UNDELIVERED)
# Rows the workers' poll sends: deferred, re-opened, or undelivered.
POLLED = (SENDING, UNDELIVERED)
_DETAIL_LIMIT = 2000
# Global daily budgets: name -> the methods that share it (``gateway.acks.policy.BUDGETS``).
BUDGET_METHODS: dict[str, tuple[str, ...]] = {"sms": ("sms", "whatsapp"), "email": ("email",)}
# Why a claim took no place: the recipient's day or the budget's day is full.
RECIPIENT_FULL, BUDGET_FULL = "recipient_daily_limit", "daily_budget_exhausted"
# The events that prove an acknowledgement went out, or did not (``event.ack.sent``...).
SENT_KIND, FAILED_KIND = "ack.sent", "ack.failed"


def event_key(complaint_id: str, kind: str) -> str:
    """The dedup key of a complaint's acknowledgement event: one ``ack.sent`` per complaint."""
    return f"ack:{complaint_id}:{kind}"


@dataclass(frozen=True)
class Budget:
    """A global daily allowance shared by some methods (``sms`` for SMS and WhatsApp)."""

    name: str
    methods: tuple[str, ...]
    per_day: int


@dataclass(frozen=True)
class Claim:
    """What ``claim_within`` did: the row opened, or why no place was taken."""

    record: AckRecord | None
    refused: str | None = None  # RECIPIENT_FULL or BUDGET_FULL
    # This claim took the budget's last place today (true for exactly one claim a day).
    filled_budget: bool = False


@dataclass(frozen=True)
class AckRecord:
    id: str
    complaint_id: str
    reference: str
    method: str | None
    recipient: str | None
    status: str
    reason: str | None
    message_id: str | None
    document: str | None
    attempts: int
    sent_at: datetime | None
    created_at: datetime
    # Set while the row is the workers' poll's (deferred, re-opened, or leased).
    retry_at: datetime | None = None
    reopened: int = 0
    # Sends found undelivered and sent again (each round publishes its own ``ack.sent``).
    rounds: int = 0
    provider_id: str | None = None
    detail: str | None = None

    @property
    def undecided(self) -> bool:
        """Counted attempts only: no method was chosen yet."""
        return self.status == SENDING and self.method is None


@dataclass(frozen=True)
class Overdue:
    """A complaint without a sent acknowledgement, for ``intake ack report``."""

    reference: str
    channel: str
    received_at: datetime
    ack_due_at: datetime
    status: str  # "none" when the worker never saw it
    reason: str | None


def _record(row: AcknowledgementRow) -> AckRecord:
    return AckRecord(
        id=row.id,
        complaint_id=row.complaint_id,
        reference=row.reference,
        method=row.method,
        recipient=row.recipient,
        status=row.status,
        reason=row.reason,
        message_id=row.message_id,
        document=row.document,
        attempts=row.attempts,
        sent_at=row.sent_at,
        created_at=row.created_at,
        retry_at=row.retry_at,
        reopened=row.reopened or 0,
        rounds=row.rounds or 0,
        provider_id=row.provider_id,
        detail=row.detail,
    )


def _detail(text: str | None) -> str | None:
    return (text or "")[:_DETAIL_LIMIT] or None


def _row_of(session: Session, complaint_id: str) -> AcknowledgementRow | None:
    return session.scalar(
        select(AcknowledgementRow).where(AcknowledgementRow.complaint_id == complaint_id)
    )


def _put(session: Session, message: ComplaintMessage, values: dict[str, Any]) -> AckRecord:
    """Insert the complaint's row, or fill in its undecided one; a decided row stays as it is."""
    row = _row_of(session, message.id)
    if row is None:
        row = AcknowledgementRow(
            id=str(uuid.uuid4()),
            complaint_id=message.id,
            reference=message.reference,
            attempts=0,
            reopened=0,
            rounds=0,
            **values,
        )
        session.add(row)
    elif _record(row).undecided:
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = datetime.now(UTC)
    session.flush()
    return _record(row)


def _lock_recipient(session: Session, recipient: str) -> None:
    """Serialize the daily count of one recipient until the transaction ends.

    SQLite needs nothing: a write transaction holds the database's only
    write lock from its ``BEGIN IMMEDIATE``.
    """
    if session.get_bind().dialect.name == "postgresql":
        _lock_key(session, recipient)


def _lock_key(session: Session, name: str) -> None:
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _lock_budget(session: Session, budget: Budget) -> None:
    """Serialize the daily count of one budget (taken before any recipient's lock)."""
    if session.get_bind().dialect.name == "postgresql":
        _lock_key(session, f"ack-budget:{budget.name}")


def _budget_used_since(
    session: Session, methods: Sequence[str], since: datetime, excluding: str | None = None
) -> int:
    query = (
        select(func.count())
        .select_from(AcknowledgementRow)
        .where(
            AcknowledgementRow.method.in_(list(methods)),
            AcknowledgementRow.status.in_(COUNTED),
            AcknowledgementRow.claimed_at >= since,
        )
    )
    if excluding is not None:
        query = query.where(AcknowledgementRow.complaint_id != excluding)
    return int(session.scalar(query) or 0)


def _counted_since(
    session: Session, recipient: str, since: datetime, excluding: str | None = None
) -> int:
    query = (
        select(func.count())
        .select_from(AcknowledgementRow)
        .where(
            AcknowledgementRow.recipient == recipient,
            AcknowledgementRow.status.in_(COUNTED),
            AcknowledgementRow.claimed_at >= since,
        )
    )
    if excluding is not None:
        query = query.where(AcknowledgementRow.complaint_id != excluding)
    return int(session.scalar(query) or 0)


def _deferred() -> ColumnElement[bool]:
    """A ``sending`` row waiting for the workers' poll after failures of ours."""
    return and_(
        AcknowledgementRow.status == SENDING,
        AcknowledgementRow.retry_at.is_not(None),
        AcknowledgementRow.reason.is_not(None),
    )


def _bring_forward(session: Session, complaint_id: str, moment: datetime) -> bool:
    """Make a deferred row due now, with a fresh round of attempts; False if it is not deferred.

    One conditional UPDATE, so a worker that took the row meanwhile (its
    lease clears the reason) keeps it.
    """
    result = session.execute(
        update(AcknowledgementRow)
        .where(AcknowledgementRow.complaint_id == complaint_id, _deferred())
        .values(retry_at=moment, attempts=0, reason=None, updated_at=moment)
    )
    return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


class AckStore:
    def __init__(self, engine: Engine, zone: str) -> None:
        self.engine = engine
        self.zone = ZoneInfo(zone)

    def get(self, complaint_id: str) -> AckRecord | None:
        def action() -> AckRecord | None:
            with reading(self.engine) as session:
                row = _row_of(session, complaint_id)
                return None if row is None else _record(row)

        return guarded(action)

    def skip(self, message: ComplaintMessage, reason: str, detail: str = "") -> AckRecord:
        """Record why nothing is sent; a twin worker's decided row wins."""
        values = {
            "status": SKIPPED,
            "reason": reason,
            "detail": _detail(detail),
            "languages": "",
            "retry_at": None,
        }
        return self._write_row(message, lambda session: _put(session, message, values))

    def claim(
        self,
        message: ComplaintMessage,
        values: dict[str, Any],
        cap: int,
        now: datetime | None = None,
    ) -> AckRecord | None:
        """Take one of today's ``cap`` places of the recipient and open the row ``sending``.

        ``None`` when the day is full (another worker took the last place
        since the decision). The count and the insert are one transaction,
        serialized per recipient, so the cap holds with any number of workers.
        """
        return self.claim_within(message, values, cap, None, now).record

    def claim_within(
        self,
        message: ComplaintMessage,
        values: dict[str, Any],
        cap: int,
        budget: Budget | None,
        now: datetime | None = None,
    ) -> Claim:
        """``claim``, also within a global daily ``budget`` of the method's group.

        The budget's count, the recipient's count and the insert are one
        transaction, serialized per budget then per recipient.
        """
        moment = now or datetime.now(UTC)
        recipient = str(values["recipient"])
        midnight = self._midnight(moment)

        def take(session: Session) -> Claim:
            used = 0
            if budget is not None:
                _lock_budget(session, budget)
                used = _budget_used_since(session, budget.methods, midnight)
                if used >= budget.per_day:
                    return Claim(None, BUDGET_FULL)
            _lock_recipient(session, recipient)
            if _counted_since(session, recipient, midnight) >= cap:
                return Claim(None, RECIPIENT_FULL)
            record = _put(session, message, {**values, "status": SENDING, "claimed_at": moment})
            filled = budget is not None and used + 1 == budget.per_day
            return Claim(record, filled_budget=filled)

        def kept(existing: Any) -> Claim:
            return existing if isinstance(existing, Claim) else Claim(existing)

        return kept(self._write_row(message, take))

    def _write_row(self, message: ComplaintMessage, write: Any) -> Any:
        def action() -> Any:
            try:
                with writing(self.engine) as session:
                    return write(session)
            except IntegrityError:  # a twin worker inserted the row first: its row wins
                existing = self.get(message.id)
                if existing is None:
                    raise
                return existing

        return guarded(action)

    def finish(self, complaint_id: str, status: str, **fields: object) -> None:
        """Move the row to ``status``, setting any other column given."""
        values = {"status": status, "updated_at": datetime.now(UTC), **fields}
        if status != SENDING:
            values["retry_at"] = None  # no longer waiting for a worker's poll
            values.setdefault("reason", None)  # a deferral's reason is not the outcome's
        if isinstance(values.get("detail"), str):
            values["detail"] = str(values["detail"])[:_DETAIL_LIMIT]

        def action() -> None:
            with writing(self.engine) as session:
                session.execute(
                    update(AcknowledgementRow)
                    .where(AcknowledgementRow.complaint_id == complaint_id)
                    .values(**values)
                )

        guarded(action)

    def handed_over(
        self,
        complaint_id: str,
        *,
        sent_at: datetime,
        provider_id: str | None,
        event_id: str,
        delivery: str | None,
    ) -> None:
        """Close the row ``sent``; with a ``delivery`` state, track what the provider reports.

        One transaction: the row and, for a message handed to Twilio or the
        SMTP relay (``provider_id``), its ``acknowledgement_deliveries`` row
        in the state the provider answered (Twilio's ``queued``; ``sent`` for
        an e-mail the relay took).
        """
        moment = datetime.now(UTC)

        def action() -> None:
            with writing(self.engine) as session:
                row = _row_of(session, complaint_id)
                if row is None:
                    return
                row.status, row.sent_at, row.provider_id = SENT, sent_at, provider_id
                row.event_id, row.retry_at, row.reason = event_id, None, None
                row.updated_at = moment
                if delivery is None or not provider_id or row.method is None:
                    return
                session.add(
                    AckDeliveryRow(
                        id=str(uuid.uuid4()),
                        ack_id=row.id,
                        complaint_id=complaint_id,
                        round=row.rounds or 0,
                        method=row.method,
                        provider_id=provider_id[:255],
                        status=delivery,
                        resent=False,
                        created_at=moment,
                    )
                )
                if row.rounds:  # the sends found undelivered before this one were resent
                    session.execute(
                        update(AckDeliveryRow)
                        .where(
                            AckDeliveryRow.ack_id == row.id,
                            AckDeliveryRow.round < row.rounds,
                            AckDeliveryRow.status.in_(sorted(NOT_DELIVERED)),
                        )
                        .values(resent=True)
                    )

        guarded(action)

    def count_attempt(self, message: ComplaintMessage, error: str) -> int:
        """Count a failed attempt (opening an undecided row if there is none); the new count."""

        def action() -> int:
            with writing(self.engine) as session:
                row = _row_of(session, message.id)
                if row is None:
                    _put(session, message, {"status": SENDING, "languages": ""})
                    row = _row_of(session, message.id)
                assert row is not None  # just written
                row.attempts = (row.attempts or 0) + 1
                row.detail = _detail(error)
                row.updated_at = datetime.now(UTC)
                return row.attempts

        return guarded(action)

    def sent_today(
        self, recipient: str, now: datetime | None = None, *, excluding: str | None = None
    ) -> int:
        """Acknowledgements to this recipient since local midnight (Africa/Casablanca),
        the complaint ``excluding``'s own left out."""
        since = self._midnight(now or datetime.now(UTC))

        def action() -> int:
            with reading(self.engine) as session:
                return _counted_since(session, recipient, since, excluding)

        return guarded(action)

    def budget_used_today(
        self, methods: Sequence[str], now: datetime | None = None, *, excluding: str | None = None
    ) -> int:
        """Acknowledgements by these methods since local midnight, whoever the recipient
        (the complaint ``excluding``'s own left out)."""
        since = self._midnight(now or datetime.now(UTC))

        def action() -> int:
            with reading(self.engine) as session:
                return _budget_used_since(session, methods, since, excluding)

        return guarded(action)

    def budgets_used_today(self, now: datetime | None = None) -> dict[str, int]:
        """Today's count of each global budget (``BUDGET_METHODS``), for ``/metrics``."""
        return {
            name: self.budget_used_today(methods, now) for name, methods in BUDGET_METHODS.items()
        }

    def next_midnight(self, now: datetime | None = None) -> datetime:
        """The start of the next local day, when the daily budgets and caps start over."""
        local = (now or datetime.now(UTC)).astimezone(self.zone)
        tomorrow = local.date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), tzinfo=self.zone).astimezone(UTC)

    def wait_for_budget(
        self, message: ComplaintMessage, retry_at: datetime, reason: str, detail: str = ""
    ) -> AckRecord:
        """Leave an undecided row to the workers' poll from ``retry_at`` (a budget's next day).

        Undecided (no method): the poll decides again then, and takes a place
        of that day. ``reason`` marks it deferred, so ``intake ack retry``
        (after raising the budget) may bring it forward.
        """
        values = {
            "status": SENDING,
            "languages": "",
            "retry_at": retry_at,
            "reason": reason,
            "detail": _detail(detail),
        }
        return self._write_row(message, lambda session: _put(session, message, values))

    def _midnight(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        return datetime.combine(local.date(), time(0), tzinfo=self.zone)

    # -- intake ack retry and the workers' poll ---------------------------------
    def retryable(
        self,
        *,
        reason: str | None = None,
        since: datetime | None = None,
        references: Sequence[str] = (),
        now: datetime | None = None,
    ) -> list[AckRecord]:
        """Failed or deferred acknowledgements of complaints whose 10-day window is still open.

        Without ``reason``, refusals for good (``PERMANENT_REASONS``) are
        left out: sending again would reach the same refusal.
        """
        query = (
            select(AcknowledgementRow)
            .join(ComplaintRow, ComplaintRow.id == AcknowledgementRow.complaint_id)
            .where(
                (AcknowledgementRow.status == FAILED) | _deferred(),
                ComplaintRow.ack_due_at > (now or datetime.now(UTC)),
            )
            .order_by(ComplaintRow.received_at)
        )
        if reason:
            query = query.where(AcknowledgementRow.reason == reason)
        else:
            permanent = AcknowledgementRow.reason.in_(sorted(PERMANENT_REASONS))
            query = query.where(or_(AcknowledgementRow.reason.is_(None), ~permanent))
        if since:
            query = query.where(AcknowledgementRow.updated_at >= since)
        if references:
            query = query.where(AcknowledgementRow.reference.in_([r.upper() for r in references]))

        def action() -> list[AckRecord]:
            with reading(self.engine) as session:
                return [_record(row) for row in session.scalars(query)]

        return guarded(action)

    def reopen(
        self,
        complaint_id: str,
        cap: int,
        now: datetime | None = None,
        budgets: Sequence[Budget] = (),
    ) -> str | None:
        """Hand a failed or deferred row to a worker's poll at once; else say why not.

        A failed row takes one of the recipient's places for today, and one
        of its method's global budget (``budgets``), like a first send; a
        deferred one still holds the place it took.
        """
        moment = now or datetime.now(UTC)

        def action() -> str | None:
            with writing(self.engine) as session:
                if _bring_forward(session, complaint_id, moment):
                    return None
                row = _row_of(session, complaint_id)
                if row is None or row.status != FAILED:
                    return "no longer failed or deferred"
                if row.recipient is not None:  # else undecided: the worker decides and claims
                    for budget in budgets:
                        if row.method in budget.methods:
                            _lock_budget(session, budget)
                            midnight = self._midnight(moment)
                            if _budget_used_since(session, budget.methods, midnight) >= (
                                budget.per_day
                            ):
                                return BUDGET_FULL
                    _lock_recipient(session, row.recipient)
                    if _counted_since(session, row.recipient, self._midnight(moment)) >= cap:
                        return "recipient_daily_limit"
                    row.claimed_at = moment
                row.status, row.reason, row.attempts = SENDING, None, 0
                row.retry_at = row.updated_at = moment
                row.reopened = (row.reopened or 0) + 1
                return None

        return guarded(action)

    def defer(self, complaint_id: str, retry_at: datetime, reason: str | None) -> None:
        """Leave a ``sending`` row to the workers' poll from ``retry_at`` (off the queue).

        ``reason``, the last failure's code, also marks the row as waiting
        (not in a worker's hands), so ``intake ack retry`` may bring it
        forward; ``None`` for a short pause that needs no operator.
        """

        def action() -> None:
            with writing(self.engine) as session:
                session.execute(
                    update(AcknowledgementRow)
                    .where(
                        AcknowledgementRow.complaint_id == complaint_id,
                        AcknowledgementRow.status == SENDING,
                    )
                    .values(retry_at=retry_at, reason=reason, updated_at=datetime.now(UTC))
                )

        guarded(action)

    def due_retries(self, limit: int, now: datetime | None = None) -> list[AckRecord]:
        """Deferred or re-opened rows a worker may try now, oldest first."""
        query = (
            select(AcknowledgementRow)
            .where(
                AcknowledgementRow.status.in_(POLLED),
                AcknowledgementRow.retry_at <= (now or datetime.now(UTC)),
            )
            .order_by(AcknowledgementRow.retry_at)
            .limit(limit)
        )

        def action() -> list[AckRecord]:
            with reading(self.engine) as session:
                return [_record(row) for row in session.scalars(query)]

        return guarded(action)

    def take_retry(self, complaint_id: str, lease: timedelta, now: datetime | None = None) -> bool:
        """Make a due row this worker's for ``lease``; False if another took it.

        The reason is cleared: a row in a worker's hands is not brought
        forward by ``intake ack retry`` (that would send it twice).
        """
        moment = now or datetime.now(UTC)

        def action() -> bool:
            with writing(self.engine) as session:
                result = session.execute(
                    update(AcknowledgementRow)
                    .where(
                        AcknowledgementRow.complaint_id == complaint_id,
                        AcknowledgementRow.status.in_(POLLED),
                        AcknowledgementRow.retry_at <= moment,
                    )
                    .values(retry_at=moment + lease, reason=None)
                )
                return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

        return guarded(action)

    def event_recorded(self, dedup_key: str) -> bool:
        """Whether the event of an acknowledgement (``ack.sent``...) is already in the outbox."""

        def action() -> bool:
            with reading(self.engine) as session:
                found = session.scalar(select(EventRow.id).where(EventRow.dedup_key == dedup_key))
                return found is not None

        return guarded(action)

    def letters(self, status: str = QUEUED) -> list[AckRecord]:
        def action() -> list[AckRecord]:
            with reading(self.engine) as session:
                rows = session.scalars(
                    select(AcknowledgementRow)
                    .where(
                        AcknowledgementRow.method == "letter",
                        AcknowledgementRow.status == status,
                    )
                    .order_by(AcknowledgementRow.created_at)
                )
                return [_record(row) for row in rows]

        return guarded(action)

    def by_id(self, ack_id: str) -> AckRecord | None:
        def action() -> AckRecord | None:
            with reading(self.engine) as session:
                row = session.get(AcknowledgementRow, ack_id)
                return None if row is None else _record(row)

        return guarded(action)

    def overdue(self, days: int, now: datetime | None = None) -> list[Overdue]:
        """Complaints received more than ``days`` ago whose acknowledgement was not sent.

        Follow-ups are left out: they continue a complaint acknowledged before.
        """
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        query = (
            select(ComplaintRow, AcknowledgementRow)
            .outerjoin(AcknowledgementRow, AcknowledgementRow.complaint_id == ComplaintRow.id)
            .where(
                ComplaintRow.received_at <= cutoff,
                ComplaintRow.follow_up_of.is_(None),
                (AcknowledgementRow.id.is_(None)) | (AcknowledgementRow.status != SENT),
            )
            .order_by(ComplaintRow.received_at)
        )

        def action() -> list[Overdue]:
            with reading(self.engine) as session:
                return [
                    Overdue(
                        reference=complaint.reference,
                        channel=complaint.channel,
                        received_at=complaint.received_at,
                        ack_due_at=complaint.ack_due_at,
                        status=ack.status if ack else "none",
                        reason=ack.reason if ack else None,
                    )
                    for complaint, ack in session.execute(query).all()
                ]

        return guarded(action)
