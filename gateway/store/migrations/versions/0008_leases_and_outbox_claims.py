"""several instances: leader leases and outbox claims

Revision ID: 0008
Revises: 0003, 0005, 0006, 0007
Create Date: 2026-11-28

Merges the feature branches into one head. ``leases`` holds one row per job
that must run in one process at a time (the IMAP poller of a mailbox);
``outbox.claimed_by`` / ``claimed_until`` let several relays take disjoint
batches (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL) and let a
dead relay's claim lapse.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0008"
down_revision = ("0003", "0005", "0006", "0007")
branch_labels = None
depends_on = None

UTC_DATETIME = gateway.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("acquired_at", UTC_DATETIME, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
    op.drop_table("leases")
