"""The monthly complaints register: one row per complaint received in a month, and its sums.

``intake register export`` and the ``/ops/`` register tab ->
``Store.register`` -> **Register.month** (complaints received in the local
month, their acknowledgement, what case handling reported, the inputs that
were not complaints, the calls to return and how many were called back)
-> rows and a summary, plain data the callers write
as CSV, XLSX or charts.

Delays are counted in calendar days of the local time zone (Africa/Casablanca),
as the circular counts them: ``ack_days`` from the day received to the day
acknowledged, ``answer_days`` to the day answered. A complaint is past a
deadline when it was done after it, or is still not done and the deadline
has passed. The answer deadline is the legal one (40 days); an extension
told to the customer shows in ``status`` (``extended``), not here. A
complaint closed without an answer (withdrawn, a duplicate) has no
``answered_at`` nor ``answer_days``; it is past the answer deadline only if
it was closed after it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from gateway.store.acks import SENT
from gateway.store.db import reading
from gateway.store.intake import guarded
from gateway.store.tables import (
    MADE_COMPLAINT,
    AcknowledgementRow,
    CallBackRow,
    ComplaintRow,
    ComplaintStateRow,
    EventRow,
    EvidenceRow,
    TriageRow,
)

COLUMNS = (
    "reference",
    "channel",
    "origin",
    "product",
    "language",
    "received_at",
    "ack_due_at",
    "acknowledged_at",
    "ack_days",
    "answer_due_at",
    "answered_at",
    "answer_days",
    "status",
    "customer_key",
    "triage",
)
# Intake events that are inputs turned away as not complaints, counted apart.
NON_COMPLAINT_PREFIXES = ("triage.", "email.autoreply")
NO_PRODUCT = "(none)"
# What the summary groups complaints by, in this order.
GROUP_FIELDS = ("channel", "product", "origin")


@dataclass(frozen=True)
class RegisterRow:
    reference: str
    channel: str
    origin: str
    product: str | None
    language: str
    received_at: datetime
    ack_due_at: datetime
    acknowledged_at: datetime | None
    ack_days: int | None
    answer_due_at: datetime
    answered_at: datetime | None
    answer_days: int | None
    status: str
    customer_key: str | None
    triage: str
    # Past a deadline: done after it, or not done and the deadline passed.
    ack_late: bool = False
    answer_late: bool = False

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


@dataclass(frozen=True)
class Delays:
    """One delay (days) over a group: median, 90th percentile, how many past the deadline."""

    count: int
    median: float | None
    p90: float | None
    late: int


@dataclass(frozen=True)
class GroupSums:
    channel: str
    product: str
    origin: str
    complaints: int
    acknowledged: int
    answered: int
    ack: Delays
    answer: Delays


@dataclass(frozen=True)
class MonthRegister:
    month: str  # YYYY-MM
    zone: str
    rows: tuple[RegisterRow, ...]
    # Inputs of the month that were not complaints, by kind (``triage.spam``...).
    non_complaints: dict[str, int] = field(default_factory=dict)
    # Calls of the month to return, by reason: (calls, called back so far).
    calls_to_return: dict[str, tuple[int, int]] = field(default_factory=dict)

    def groups(self, by: Sequence[str] = GROUP_FIELDS) -> list[GroupSums]:
        """Counts and delays by ``by`` (channel x product x origin), then a total line ("*").

        A field left out of ``by`` is ``*`` in every line (``by=("channel",)``:
        one line per channel).
        """
        keyed: dict[tuple[str, str, str], list[RegisterRow]] = {}
        for row in self.rows:
            key = tuple(_group_value(row, name) if name in by else "*" for name in GROUP_FIELDS)
            keyed.setdefault((key[0], key[1], key[2]), []).append(row)
        found = [_sums(key, items) for key, items in sorted(keyed.items())]
        if self.rows:
            found.append(_sums(("*", "*", "*"), list(self.rows)))
        return found

    @property
    def non_complaint_total(self) -> int:
        return sum(self.non_complaints.values())


def month_bounds(month: str, zone: str) -> tuple[datetime, datetime]:
    """The first instant of the local month and of the next one, in UTC."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise ValueError(f"month {month!r} is not YYYY-MM") from None
    following = date(year + (number == 12), number % 12 + 1, 1)
    tz = ZoneInfo(zone)
    return (
        datetime.combine(first, time(), tz).astimezone(UTC),
        datetime.combine(following, time(), tz).astimezone(UTC),
    )


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(share * n)); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def customer_columns(message: dict[str, Any]) -> tuple[str | None, str]:
    """``customer_key`` and ``triage`` of a stored complaint (absent before contract 1.4).

    Every stored complaint is one the triage kept as a complaint, so its
    triage is ``complaint`` unless the message says otherwise.
    """
    customer = message.get("customer") or {}
    key = customer.get("key") if isinstance(customer, dict) else None
    triage = message.get("triage")
    kind = triage.get("kind") if isinstance(triage, dict) else triage
    return (key if isinstance(key, str) else None, kind if isinstance(kind, str) else "complaint")


class Register:
    def __init__(self, engine: Engine, zone: str) -> None:
        self.engine = engine
        self.zone = zone

    def month(self, month: str, now: datetime | None = None) -> MonthRegister:
        """The register of ``month`` (YYYY-MM, local); ``ValueError`` for a malformed month."""
        start, end = month_bounds(month, self.zone)
        moment = now or datetime.now(UTC)
        return guarded(lambda: self._month(month, start, end, moment))

    def _month(self, month: str, start: datetime, end: datetime, now: datetime) -> MonthRegister:
        with reading(self.engine) as session:
            rows = session.execute(
                select(
                    ComplaintRow,
                    AcknowledgementRow.status,
                    AcknowledgementRow.sent_at,
                    ComplaintStateRow.status,
                    ComplaintStateRow.answered_at,
                    ComplaintStateRow.closed_at,
                )
                .outerjoin(AcknowledgementRow, AcknowledgementRow.complaint_id == ComplaintRow.id)
                .outerjoin(ComplaintStateRow, ComplaintStateRow.complaint_id == ComplaintRow.id)
                .where(ComplaintRow.received_at >= start, ComplaintRow.received_at < end)
                .order_by(ComplaintRow.received_at, ComplaintRow.reference)
            ).all()
            # An item staff made a complaint is counted once, as that complaint.
            kinds = session.execute(
                select(EventRow.kind)
                .join(EvidenceRow, EvidenceRow.id == EventRow.evidence_id)
                .outerjoin(TriageRow, TriageRow.id == EventRow.id)
                .where(
                    EvidenceRow.received_at >= start,
                    EvidenceRow.received_at < end,
                    or_(TriageRow.status.is_(None), TriageRow.status != MADE_COMPLAINT),
                )
            ).scalars()
            non_complaints = Counter(kind for kind in kinds if _non_complaint(kind))
            calls_to_return = _calls_to_return(session, start, end)
        register_rows = tuple(
            self._row(complaint, ack_status, sent_at, status, (answered_at, closed_at), now)
            for complaint, ack_status, sent_at, status, answered_at, closed_at in rows
        )
        return MonthRegister(
            month, self.zone, register_rows, dict(sorted(non_complaints.items())), calls_to_return
        )

    def _row(  # noqa: PLR0917
        self,
        complaint: ComplaintRow,
        ack_status: str | None,
        sent_at: datetime | None,
        status: str | None,
        answered_closed: tuple[datetime | None, datetime | None],
        now: datetime,
    ) -> RegisterRow:
        # Closed without an answer (withdrawn, a duplicate): no answer_days; past the
        # answer deadline only if closed after it.
        answered_at, closed_at = answered_closed
        message = json.loads(complaint.message)
        acknowledged_at = sent_at if ack_status == SENT else None
        customer_key, triage = customer_columns(message)
        product = message.get("product")
        return RegisterRow(
            reference=complaint.reference,
            channel=complaint.channel,
            origin=complaint.origin,
            product=product if isinstance(product, str) else None,
            language=complaint.language,
            received_at=complaint.received_at,
            ack_due_at=complaint.ack_due_at,
            acknowledged_at=acknowledged_at,
            ack_days=self._days(complaint.received_at, acknowledged_at),
            answer_due_at=complaint.answer_due_at,
            answered_at=answered_at,
            answer_days=self._days(complaint.received_at, answered_at),
            status=status or "received",
            customer_key=customer_key,
            triage=triage,
            ack_late=_late(acknowledged_at, complaint.ack_due_at, now),
            answer_late=_late(answered_at or closed_at, complaint.answer_due_at, now),
        )

    def _days(self, start: datetime, end: datetime | None) -> int | None:
        if end is None:
            return None
        tz = ZoneInfo(self.zone)
        return (end.astimezone(tz).date() - start.astimezone(tz).date()).days


def _late(done_at: datetime | None, due_at: datetime, now: datetime) -> bool:
    return done_at > due_at if done_at is not None else now > due_at


def _group_value(row: RegisterRow, name: str) -> str:
    value = getattr(row, name)
    return value if isinstance(value, str) else NO_PRODUCT


def _calls_to_return(
    session: Session, start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """Calls that came in during the month to be returned, by reason: (calls, called back)."""
    called_back = func.count(CallBackRow.done_at)
    found = session.execute(
        select(CallBackRow.reason, func.count(), called_back)
        .where(CallBackRow.received_at >= start, CallBackRow.received_at < end)
        .group_by(CallBackRow.reason)
        .order_by(CallBackRow.reason)
    ).all()
    return {reason: (int(calls), int(done)) for reason, calls, done in found}


def _non_complaint(kind: str) -> bool:
    return kind.startswith(NON_COMPLAINT_PREFIXES)


def _delays(days: Iterable[int | None], late: int) -> Delays:
    values = [float(day) for day in days if day is not None]
    return Delays(
        count=len(values),
        median=statistics.median(values) if values else None,
        p90=percentile(values, 0.9),
        late=late,
    )


def _sums(key: tuple[str, str, str], rows: list[RegisterRow]) -> GroupSums:
    channel, product, origin = key
    return GroupSums(
        channel=channel,
        product=product,
        origin=origin,
        complaints=len(rows),
        acknowledged=sum(row.acknowledged_at is not None for row in rows),
        answered=sum(row.answered_at is not None for row in rows),
        ack=_delays((row.ack_days for row in rows), sum(row.ack_late for row in rows)),
        answer=_delays((row.answer_days for row in rows), sum(row.answer_late for row in rows)),
    )
