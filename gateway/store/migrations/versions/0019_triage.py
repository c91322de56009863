"""triage: inputs found not to be complaints, kept for a person to sort

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

A branch (``migrate`` upgrades to every head).

- ``triage``: one row per non-complaint (spam, phishing, marketing, thanks,
  opt_out, empty), beside its ``events`` row (same id) that holds the
  evidence: the complaint it would be (reference and deadlines from the
  original receipt), its state on the staff page (``to_sort``,
  ``confirmed``, ``complaint``), who decided and when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = gateway.store.tables.UTCDateTime(timezone=True)
    op.create_table(
        "triage",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dedup_key", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", when, nullable=True),
        sa.Column("complaint_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(["id"], ["events.id"], name=op.f("fk_triage_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_triage_dedup_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_triage_reference")),
    )
    op.create_index(op.f("ix_triage_kind"), "triage", ["kind"])
    op.create_index(op.f("ix_triage_received_at"), "triage", ["received_at"])
    op.create_index(op.f("ix_triage_status"), "triage", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_triage_status"), table_name="triage")
    op.drop_index(op.f("ix_triage_received_at"), table_name="triage")
    op.drop_index(op.f("ix_triage_kind"), table_name="triage")
    op.drop_table("triage")
