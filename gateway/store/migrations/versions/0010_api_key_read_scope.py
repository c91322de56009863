"""api keys: which complaints a key may read back

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26

``reads_all`` false (every key so far): ``GET /v1/complaints/{reference}``
and ``GET /v1/letters/{id}`` answer only for what the key itself submitted.
A key created with ``intake api-key create NAME --read-all`` reads any
complaint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("reads_all", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("reads_all")
