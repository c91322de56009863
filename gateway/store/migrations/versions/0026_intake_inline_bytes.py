"""intake: a small input's bytes kept in its capture row until a runner takes it

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

- ``intake.data``: the raw bytes of an input under
  ``captures.INLINE_MAX_BYTES``, committed with the row in the edge's one
  group commit (one fsync, the database's, instead of the blob's, its
  folder's and the database's). The runner that claims the row writes the
  blob and empties the column; larger inputs are blobs from the start, as
  before (NULL here).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: no table rewrite on either database.
    op.add_column("intake", sa.Column("data", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("intake") as batch:
        batch.drop_column("data")
