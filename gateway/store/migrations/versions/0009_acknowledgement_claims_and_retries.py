"""acknowledgements: daily places, re-opened rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

``claimed_at`` is when a row took one of its recipient's places for the day:
the daily cap counts these, inside the transaction that takes the place, so
several ack workers cannot go over it. Rows already counted get their
``created_at``. ``retry_at`` and ``reopened`` serve ``intake ack retry``: a
re-opened row waits for a worker's poll (``retry_at``, also its lease), and
each round of it publishes its own ``ack.failed``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_DATETIME = gateway.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("retry_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(
            sa.Column("reopened", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.execute(
        "UPDATE acknowledgements SET claimed_at = created_at"
        " WHERE status IN ('sending', 'sent', 'queued')"
    )


def downgrade() -> None:
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.drop_column("reopened")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("claimed_at")
