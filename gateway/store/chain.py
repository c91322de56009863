"""The evidence log's chain: how an entry is sealed, and the append of a transaction.

Kept apart from ``gateway.store.evidence`` (the reader, verify and the daily
root) because the writers (``complaint_rows``, ``intake``) call ``append``.
See ``gateway.store.evidence`` for the design.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.store.blobs import SCHEME
from gateway.store.tables import EvidenceChainHeadRow, EvidenceLogRow

GENESIS = "0" * 64
HEAD_ID = 1

_INSERT_LOG = insert(EvidenceLogRow.__table__)  # type: ignore[arg-type]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(  # noqa: PLR0917
    sequence: int,
    sha256: str,
    received_at: datetime,
    channel: str,
    source_ids: dict[str, Any],
    previous_hash: str,
    removal: dict[str, Any] | None = None,
) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of one entry.

    A removal entry also seals ``removal`` (its reason and the sequence it
    removes); a captured entry's document is the six values alone, as before
    removals existed, so a ``kind`` changed either way breaks the entry.
    """
    document: dict[str, Any] = {
        "sequence": sequence,
        "sha256": sha256,
        "received_at": _iso(received_at),
        "channel": channel,
        "source_ids": source_ids,
        "previous": previous_hash,
    }
    if removal is not None:
        document["removal"] = removal
    encoded = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


CAPTURED, REMOVED = "captured", "removed"


@dataclass(frozen=True)
class Removal:
    """A blob (and the personal content around it) removed: what the log records."""

    sha256: str
    channel: str
    received_at: datetime
    reason: str  # retention:<kind>, erasure
    evidence_id: str | None = None
    removes: int | None = None  # the captured entry's sequence; None for an attachment
    source_ids: dict[str, Any] = field(default_factory=dict)

    def sealed(self) -> dict[str, Any]:
        return {"reason": self.reason, "removes": self.removes}


def append(connection: Connection, evidence_rows: Sequence[dict[str, Any]]) -> None:
    """Chain these evidence rows (dicts of the ``evidence`` table), in order, in the caller's
    transaction. Call it last in the transaction: on PostgreSQL the head stays locked
    until commit."""
    if not evidence_rows:
        return
    _append(
        connection,
        [
            (
                Removal(row["sha256"], row["channel"], row["received_at"], "", row["id"]),
                row["stored_at"],
                dict(row.get("source_ids") or {}),
                False,
            )
            for row in evidence_rows
        ],
    )


def append_removals(connection: Connection, removals: Sequence[Removal]) -> list[int]:
    """Chain these removals, in order, in the caller's transaction; their sequences."""
    return _append(
        connection,
        [(item, SCHEME + item.sha256, dict(item.source_ids), True) for item in removals],
    )


def _append(
    connection: Connection, items: Sequence[tuple[Removal, str, dict[str, Any], bool]]
) -> list[int]:
    if not items:
        return []
    head_table = EvidenceChainHeadRow.__table__
    head = connection.execute(
        select(EvidenceChainHeadRow.sequence, EvidenceChainHeadRow.entry_hash)
        .where(EvidenceChainHeadRow.id == HEAD_ID)
        .with_for_update()
    ).first()
    if head is None:
        # A store made by create_all: the first append makes the head (a concurrent
        # first append on PostgreSQL fails on the key, and its batch is tried again).
        sequence, previous = 0, GENESIS
        connection.execute(
            insert(head_table).values(id=HEAD_ID, sequence=0, entry_hash=GENESIS)  # type: ignore[arg-type]
        )
    else:
        sequence, previous = int(head[0]), str(head[1])
    now = datetime.now(UTC)
    entries: list[dict[str, Any]] = []
    for item, stored_at, source_ids, removal in items:
        sequence += 1
        sealed = entry_hash(
            sequence,
            item.sha256,
            item.received_at,
            item.channel,
            source_ids,
            previous,
            item.sealed() if removal else None,
        )
        entries.append(
            {
                "sequence": sequence,
                "evidence_id": item.evidence_id,
                "sha256": item.sha256,
                "stored_at": stored_at,
                "channel": item.channel,
                "source_ids": source_ids,
                "received_at": item.received_at,
                "previous_hash": previous,
                "entry_hash": sealed,
                "appended_at": now,
                "kind": REMOVED if removal else CAPTURED,
                "reason": item.reason if removal else None,
                "removes": item.removes if removal else None,
            }
        )
        previous = sealed
    connection.execute(_INSERT_LOG, entries)
    connection.execute(
        update(head_table)  # type: ignore[arg-type]
        .where(EvidenceChainHeadRow.id == HEAD_ID)
        .values(sequence=sequence, entry_hash=previous)
    )
    return [int(entry["sequence"]) for entry in entries]
