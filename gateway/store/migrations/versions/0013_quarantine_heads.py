"""quarantine: refused input kept as its head only

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-14

``kept_bytes``: how much of a refused input (a form post with a bad field,
a honeypot hit) ``stored_at`` holds, when only its head was kept (0: only
the metadata, past the quota). ``sha256`` and ``size`` stay the whole
input's. NULL for every row so far: they hold the whole input.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("kept_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("kept_bytes")
