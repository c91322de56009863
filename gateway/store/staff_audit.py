"""The staff audit trail: who did what, when, from where (masked), kept in the store.

Written by the staff pages (log in/out, password change), the operator page
(replays), the mailroom pages (letters uploaded, acknowledgements posted)
and the shell (accounts and roles); read by ``/ops/`` and ``intake staff
audit``. Rows are only ever added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from gateway.store.db import reading, writing
from gateway.store.tables import StaffAuditRow

_DETAIL_LIMIT = 1000
_TARGET_LIMIT = 255


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    target: str | None
    detail: str | None
    address: str | None
    data: dict[str, Any] = field(default_factory=dict)


def _entry(row: StaffAuditRow) -> AuditEntry:
    return AuditEntry(
        row.id,
        row.at,
        row.actor,
        row.role,
        row.action,
        row.target,
        row.detail,
        row.address,
        dict(row.data or {}),
    )


class StaffAudit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: str | None = None,
        *,
        role: str | None = None,
        address: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        row = StaffAuditRow(
            at=datetime.now(UTC),
            actor=actor[:128],
            role=role,
            action=action[:64],
            target=None if target is None else target[:_TARGET_LIMIT],
            detail=None if detail is None else detail[:_DETAIL_LIMIT],
            address=None if address is None else address[:64],
            data=data or {},
        )
        with writing(self.engine) as session:
            session.add(row)
            session.flush()
            return int(row.id)

    def get(self, entry_id: int) -> AuditEntry | None:
        with reading(self.engine) as session:
            row = session.get(StaffAuditRow, entry_id)
            return None if row is None else _entry(row)

    def latest(self, limit: int = 50, since: datetime | None = None) -> list[AuditEntry]:
        """Newest first."""
        query = select(StaffAuditRow).order_by(StaffAuditRow.id.desc()).limit(limit)
        if since is not None:
            query = query.where(StaffAuditRow.at >= since)
        with reading(self.engine) as session:
            return [_entry(row) for row in session.scalars(query)]
