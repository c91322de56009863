"""The evidence log's chain: how an entry is sealed, and the append of a transaction.

Kept apart from ``gateway.store.evidence`` (the reader, verify and the daily
root) because the writers (``complaint_rows``, ``intake``) call ``append``.
See ``gateway.store.evidence`` for the design.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

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
) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of one entry."""
    document = {
        "sequence": sequence,
        "sha256": sha256,
        "received_at": _iso(received_at),
        "channel": channel,
        "source_ids": source_ids,
        "previous": previous_hash,
    }
    encoded = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def append(connection: Connection, evidence_rows: Sequence[dict[str, Any]]) -> None:
    """Chain these evidence rows (dicts of the ``evidence`` table), in order, in the caller's
    transaction. Call it last in the transaction: on PostgreSQL the head stays locked
    until commit."""
    if not evidence_rows:
        return
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
    entries = []
    for row in evidence_rows:
        sequence += 1
        source_ids = dict(row.get("source_ids") or {})
        sealed = entry_hash(
            sequence, row["sha256"], row["received_at"], row["channel"], source_ids, previous
        )
        entries.append(
            {
                "sequence": sequence,
                "evidence_id": row["id"],
                "sha256": row["sha256"],
                "stored_at": row["stored_at"],
                "channel": row["channel"],
                "source_ids": source_ids,
                "received_at": row["received_at"],
                "previous_hash": previous,
                "entry_hash": sealed,
                "appended_at": now,
            }
        )
        previous = sealed
    connection.execute(_INSERT_LOG, entries)
    connection.execute(
        update(head_table)  # type: ignore[arg-type]
        .where(EvidenceChainHeadRow.id == HEAD_ID)
        .values(sequence=sequence, entry_hash=previous)
    )
