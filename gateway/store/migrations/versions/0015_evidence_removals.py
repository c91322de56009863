"""evidence log: removal entries (retention purge, erasure)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-21

A branch off 0014 (``migrate`` upgrades to every head).

``evidence_log`` gains ``kind`` (``captured``, the default, for every entry
already there; or ``removed``), ``reason`` and ``removes``: a removal entry
records a blob and personal content removed under the retention policy or an
erasure request (``gateway.store.retention``), chained like any entry, so
``intake evidence verify`` tells a removal recorded from a blob gone missing.
Existing entries keep their hash: ``captured`` entries seal the same six
values as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_log") as batch:
        batch.add_column(
            sa.Column(
                "kind", sa.String(length=16), nullable=False, server_default=sa.text("'captured'")
            )
        )
        batch.add_column(sa.Column("reason", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("removes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence_log") as batch:
        batch.drop_column("removes")
        batch.drop_column("reason")
        batch.drop_column("kind")
