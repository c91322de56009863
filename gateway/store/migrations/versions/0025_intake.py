"""intake: inputs captured at the edges, for the normalizer runners

Revision ID: 0025
Revises: 0014
Create Date: 2026-12-06

A branch off 0014 (``migrate`` upgrades to every head).

- ``intake``: one row per input an edge captured (SMTP first): its raw
  bytes' blob, receipt time, channel identifiers, dedup key, the reference
  and deadlines the sender was told, and its state for the runners
  (``captured``, ``done``, ``quarantined``), claim and outcome.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0025"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = gateway.store.tables.UTCDateTime(timezone=True)
    op.create_table(
        "intake",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("dedup_key", sa.String(length=512), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("ack_due_at", when, nullable=False),
        sa.Column("answer_due_at", when, nullable=False),
        sa.Column("stored_at", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("source_ids", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", when, nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("result_id", sa.String(length=36), nullable=True),
        sa.Column("finished_at", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_intake_dedup_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_intake_reference")),
    )
    op.create_index("ix_intake_state_received_at", "intake", ["state", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_state_received_at", table_name="intake")
    op.drop_table("intake")
