"""evidence log: an append-only hash chain over the evidence rows

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-16

A branch off 0010, beside 0011, 0012 and 0013 (``migrate`` upgrades to every
head).

- ``evidence_log``: one entry per evidence row, ``entry_hash`` sealing
  (sequence, sha256, received_at, channel, source_ids, previous_hash).
- ``evidence_chain_head``: the one row every append locks.

Evidence rows already stored are chained here, in ``created_at`` (then id)
order, so ``intake evidence verify`` checks them too: the chain proves
nothing changed after this migration, not before it. The hash is computed
here with a frozen copy of ``gateway.store.chain.entry_hash``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def _entry_hash(  # noqa: PLR0917
    sequence: int,
    sha256: str,
    received_at: datetime,
    channel: str,
    source_ids: dict[str, Any],
    previous_hash: str,
) -> str:
    moment = received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC)
    document = {
        "sequence": sequence,
        "sha256": sha256,
        "received_at": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "channel": channel,
        "source_ids": source_ids,
        "previous": previous_hash,
    }
    encoded = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def upgrade() -> None:
    when = gateway.store.tables.UTCDateTime(timezone=True)
    log = op.create_table(
        "evidence_log",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("evidence_id", sa.String(length=36), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_at", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source_ids", sa.JSON(), nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("appended_at", when, nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_evidence_log")),
    )
    op.create_index(op.f("ix_evidence_log_evidence_id"), "evidence_log", ["evidence_id"])
    op.create_index(op.f("ix_evidence_log_appended_at"), "evidence_log", ["appended_at"])
    head = op.create_table(
        "evidence_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_chain_head")),
    )
    evidence = sa.table(
        "evidence",
        sa.column("id", sa.String()),
        sa.column("sha256", sa.String()),
        sa.column("stored_at", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("source_ids", sa.JSON()),
        sa.column("received_at", when),
        sa.column("created_at", when),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(evidence).order_by(evidence.c.created_at, evidence.c.id)
    ).mappings()
    sequence, previous, now, batch = 0, GENESIS, datetime.now(UTC), []
    for row in rows:
        sequence += 1
        source_ids = dict(row["source_ids"] or {})
        sealed = _entry_hash(
            sequence, row["sha256"], row["received_at"], row["channel"], source_ids, previous
        )
        batch.append(
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
    if batch:
        op.bulk_insert(log, batch)
    op.bulk_insert(head, [{"id": 1, "sequence": sequence, "entry_hash": previous}])


def downgrade() -> None:
    op.drop_table("evidence_chain_head")
    op.drop_index(op.f("ix_evidence_log_appended_at"), table_name="evidence_log")
    op.drop_index(op.f("ix_evidence_log_evidence_id"), table_name="evidence_log")
    op.drop_table("evidence_log")
