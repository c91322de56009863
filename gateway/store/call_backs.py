"""Calls to return: phone calls that ended without a usable message, for staff to call back.

The phone line (``channels.twilio.call_backs``) -> **note**: one row per
call (its CallSid), with the caller's number, the language chosen, when the
call came in and why it is to be returned (``missed``,
``out_of_hours_no_message``, ``empty_message``); a repeated webhook changes
nothing, but an empty message is more telling than "missed" and replaces it
while nobody has called back yet. **link** names the call's complaint when a
recording makes one after all.

The staff page ``/ops/callbacks/`` -> **listing** (to return, oldest first:
the caller has waited longest; done, newest first) and **mark_done** (who,
when, an optional outcome note; once). The register counts them per month
(``gateway.store.register``); an erasure forgets the number
(``gateway.store.personal_data``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, update

from gateway.store.calls import insert_ignoring_duplicates
from gateway.store.db import reading, writing
from gateway.store.intake import guarded
from gateway.store.tables import (
    EMPTY_MESSAGE,
    MISSED,
    OUT_OF_HOURS_NO_MESSAGE,
    CallBackRow,
)

REASONS = (MISSED, OUT_OF_HOURS_NO_MESSAGE, EMPTY_MESSAGE)
OUTCOME_LIMIT = 500


@dataclass(frozen=True)
class CallBack:
    id: str
    call_sid: str
    caller: str | None
    language: str | None
    reason: str
    received_at: datetime
    reference: str | None
    done_at: datetime | None
    done_by: str | None
    outcome: str | None

    @property
    def done(self) -> bool:
        return self.done_at is not None


def _call_back(row: CallBackRow) -> CallBack:
    return CallBack(
        id=row.id,
        call_sid=row.call_sid,
        caller=row.caller,
        language=row.language,
        reason=row.reason,
        received_at=row.received_at,
        reference=row.reference,
        done_at=row.done_at,
        done_by=row.done_by,
        outcome=row.outcome,
    )


class CallBacks:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the phone line ---------------------------------------------------
    def note(
        self,
        call_sid: str,
        *,
        caller: str,
        language: str | None,
        reason: str,
        received_at: datetime,
        reference: str | None = None,
    ) -> CallBack:
        """The call is to be returned (once per call; an empty message replaces "missed")."""
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")

        def action() -> CallBack:
            with writing(self.engine) as session:
                insert_ignoring_duplicates(
                    session,
                    CallBackRow,
                    {
                        "id": str(uuid.uuid4()),
                        "call_sid": call_sid,
                        "caller": caller,
                        "language": language,
                        "reason": reason,
                        "received_at": received_at,
                        "reference": reference,
                        "created_at": datetime.now(UTC),
                    },
                )
                row = session.scalars(
                    select(CallBackRow).where(CallBackRow.call_sid == call_sid).with_for_update()
                ).one()
                if row.done_at is None and reason == EMPTY_MESSAGE:
                    row.reason = EMPTY_MESSAGE
                row.reference = row.reference or reference
                return _call_back(row)

        return guarded(action)

    def link(self, call_sid: str, reference: str) -> bool:
        """The call got a complaint after all: name it on its row (False: no row to name it on)."""

        def action() -> bool:
            with writing(self.engine) as session:
                changed = session.execute(
                    update(CallBackRow)
                    .where(CallBackRow.call_sid == call_sid, CallBackRow.reference.is_(None))
                    .values(reference=reference)
                )
                return bool(changed.rowcount)  # type: ignore[attr-defined]

        return guarded(action)

    # -- the staff page ---------------------------------------------------
    def listing(self, *, done: bool = False, limit: int = 200) -> list[CallBack]:
        """To return, oldest call first; or done, most recently called back first."""

        def action() -> list[CallBack]:
            query = select(CallBackRow).limit(limit)
            if done:
                query = query.where(CallBackRow.done_at.is_not(None)).order_by(
                    CallBackRow.done_at.desc(), CallBackRow.id
                )
            else:
                query = query.where(CallBackRow.done_at.is_(None)).order_by(
                    CallBackRow.received_at, CallBackRow.id
                )
            with reading(self.engine) as session:
                return [_call_back(row) for row in session.scalars(query)]

        return guarded(action)

    def counts(self) -> dict[str, int]:
        """Calls still to return (``open``) and called back (``done``)."""

        def action() -> dict[str, int]:
            is_done = CallBackRow.done_at.is_not(None)
            query = select(is_done, func.count()).group_by(is_done)
            with reading(self.engine) as session:
                found = {bool(done): int(count) for done, count in session.execute(query)}
            return {"open": found.get(False, 0), "done": found.get(True, 0)}

        return guarded(action)

    def get(self, item_id: str) -> CallBack | None:
        def action() -> CallBack | None:
            with reading(self.engine) as session:
                row = session.get(CallBackRow, item_id)
                return None if row is None else _call_back(row)

        return guarded(action)

    def mark_done(
        self, item_id: str, actor: str, outcome: str | None
    ) -> tuple[CallBack, bool] | None:
        """Called back by ``actor``, with an optional note; None: no such item.

        The second value is False when it was already done (who and when stay the first ones).
        """
        note = (outcome or "").strip()[:OUTCOME_LIMIT] or None

        def action() -> tuple[CallBack, bool] | None:
            with writing(self.engine) as session:
                row = session.scalars(
                    select(CallBackRow).where(CallBackRow.id == item_id).with_for_update()
                ).one_or_none()
                if row is None:
                    return None
                if row.done_at is not None:
                    return _call_back(row), False
                row.done_at, row.done_by, row.outcome = datetime.now(UTC), actor[:128], note
                return _call_back(row), True

        return guarded(action)
