"""acknowledgements: what became of each one handed to Twilio or the SMTP relay

Revision ID: 0023
Revises: 0014
Create Date: 2026-12-06

A branch off 0014 (``migrate`` upgrades to every head).

- ``acknowledgement_deliveries``: one row per acknowledgement handed to a
  provider (Twilio's MessageSid, the e-mail's Message-ID), its delivery
  state as the provider reports it (Twilio's status callbacks, bounces);
- ``acknowledgements.rounds``: sends found undelivered and sent again by
  the next method; each round publishes its own ``ack.sent``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0023"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_DATETIME = gateway.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "acknowledgement_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ack_id", sa.String(length=36), nullable=False),
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.Column("resent", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("reported_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acknowledgement_deliveries")),
    )
    for column in ("ack_id", "complaint_id", "provider_id", "status"):
        name = f"ix_acknowledgement_deliveries_{column}"
        op.create_index(op.f(name), "acknowledgement_deliveries", [column])
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rounds", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.drop_column("rounds")
    op.drop_table("acknowledgement_deliveries")
