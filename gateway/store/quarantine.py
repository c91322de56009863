"""Quarantined inputs in the store: the reader behind ``/ops/`` and ``intake quarantine``.

channel edge --(bad input)--> ``ComplaintStore.quarantine`` (raw bytes in
the blob store, row with the reason) -> **here** (list, show, resolve) ->
``gateway.ops.quarantine.replay`` runs an item through its channel again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from gateway.store.db import reading, writing
from gateway.store.intake import guarded
from gateway.store.tables import QuarantineRow

_MIN_PREFIX = 6


@dataclass(frozen=True)
class QuarantineItem:
    id: str
    channel: str
    reason_code: str
    reason: str
    sha256: str
    size: int
    content_type: str
    stored_at: str
    source_ids: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None
    complaint_id: str | None
    # Refused input kept as its head only: the bytes ``stored_at`` holds (0:
    # metadata only); ``sha256`` and ``size`` are the whole input's. None: whole.
    kept_bytes: int | None = None

    @property
    def whole(self) -> bool:
        """Whether ``stored_at`` holds the whole input (else it cannot be reprocessed)."""
        return self.kept_bytes is None or self.kept_bytes >= self.size

    def not_whole(self) -> str:
        """Why a replay of a truncated item cannot be made (for ``ReplayResult.detail``)."""
        return (
            f"only the first {self.kept_bytes} of {self.size} bytes of this refused input were "
            "kept (sha256 of the whole in the item): it cannot be reprocessed; ask the sender "
            "to send it again"
        )


@dataclass(frozen=True)
class ReplayResult:
    """What a replay gave: a complaint (or event), or why the input is still refused."""

    ok: bool
    detail: str
    complaint_id: str | None = None
    reference: str | None = None
    # Other quarantined items the same replay settled (the other files of one
    # refused letter): resolved with the same complaint.
    also_resolves: tuple[str, ...] = ()


def _item(row: QuarantineRow) -> QuarantineItem:
    return QuarantineItem(
        id=row.id,
        channel=row.channel,
        reason_code=row.reason_code,
        reason=row.reason,
        sha256=row.sha256,
        size=row.size,
        content_type=row.content_type,
        stored_at=row.stored_at,
        source_ids=dict(row.source_ids or {}),
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        complaint_id=row.complaint_id,
        kept_bytes=row.kept_bytes,
    )


class Quarantine:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def entries(
        self, *, resolved: bool = False, limit: int = 100, channel: str | None = None
    ) -> list[QuarantineItem]:
        """Newest first; unresolved items unless ``resolved``."""
        query = select(QuarantineRow).order_by(QuarantineRow.created_at.desc()).limit(limit)
        if not resolved:
            query = query.where(QuarantineRow.resolved_at.is_(None))
        if channel:
            query = query.where(QuarantineRow.channel == channel)
        with reading(self.engine) as session:
            return [_item(row) for row in session.scalars(query)]

    def get(self, item_id: str) -> QuarantineItem | None:
        """By id, or by a unique prefix of at least six characters (as the CLI lists them)."""
        with reading(self.engine) as session:
            row = session.get(QuarantineRow, item_id)
            if row is None and len(item_id) >= _MIN_PREFIX:
                rows = session.scalars(
                    select(QuarantineRow).where(QuarantineRow.id.startswith(item_id)).limit(2)
                ).all()
                row = rows[0] if len(rows) == 1 else None
            return None if row is None else _item(row)

    def holds(self, channel: str, sha256: str) -> bool:
        """Whether an input of ``channel`` with this hash was quarantined, resolved or not.

        Database failures raise ``StoreUnavailable``.
        """

        def action() -> bool:
            with reading(self.engine) as session:
                found = session.scalar(
                    select(QuarantineRow.id)
                    .where(QuarantineRow.sha256 == sha256, QuarantineRow.channel == channel)
                    .limit(1)
                )
            return found is not None

        return guarded(action)

    def unresolved_holding(self, channel: str, sha256s: list[str]) -> list[QuarantineItem]:
        """Unresolved items of ``channel`` whose stored input is one of these hashes."""
        if not sha256s:
            return []
        query = select(QuarantineRow).where(
            QuarantineRow.channel == channel,
            QuarantineRow.sha256.in_(sha256s),
            QuarantineRow.resolved_at.is_(None),
        )
        with reading(self.engine) as session:
            return [_item(row) for row in session.scalars(query)]

    def resolve(self, item_id: str, complaint_id: str | None) -> None:
        with writing(self.engine) as session:
            session.execute(
                update(QuarantineRow)
                .where(QuarantineRow.id == item_id, QuarantineRow.resolved_at.is_(None))
                .values(resolved_at=datetime.now(UTC), complaint_id=complaint_id)
            )

    def refused_heads(self) -> tuple[int, int]:
        """(bytes of refused-input heads kept, items kept as metadata only): for a gauge."""
        query = select(
            func.coalesce(func.sum(QuarantineRow.kept_bytes), 0),
            func.count().filter(QuarantineRow.kept_bytes == 0, QuarantineRow.size > 0),
        )
        with reading(self.engine) as session:
            kept, metadata_only = session.execute(query).one()
        return int(kept or 0), int(metadata_only or 0)

    def unresolved_by_channel(self) -> dict[str, int]:
        query = (
            select(QuarantineRow.channel, func.count())
            .where(QuarantineRow.resolved_at.is_(None))
            .group_by(QuarantineRow.channel)
        )
        with reading(self.engine) as session:
            return {channel: int(count) for channel, count in session.execute(query)}
