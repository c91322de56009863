"""imap checkpoint: how far the IMAP poller got in each mailbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:55:44.331831

A branch of its own beside 0004 (``migrate`` upgrades to "heads").
UIDVALIDITY and UIDs are unsigned 32-bit, hence BIGINT on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_checkpoints",
        sa.Column("mailbox", sa.String(length=512), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name=op.f("pk_imap_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("imap_checkpoints")
