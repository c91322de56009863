"""api keys: scopes instead of the one read-all flag

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10

Each key now carries the scopes it was given (``api_keys.scopes``, names
separated by spaces, sorted; ``gateway.store.apikeys.SCOPES``). Existing
keys keep exactly what they could do: submit complaints and letters and
read back their own (``complaints:write``, ``letters:write``,
``complaints:status``), plus ``complaints:read-all`` where ``reads_all`` was
set. They do **not** get ``transcripts:write``, ``origin:set`` or
``received-at:backdate``, which used to be open to every key: an operator
grants them (``intake api-key grant``) to the keys that need them.
``reads_all`` is dropped: the scopes are the one truth.

A branch off 0010 (``migrate`` upgrades to every head).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WHAT_EVERY_KEY_DID = "complaints:status complaints:write letters:write"
WITH_READ_ALL = "complaints:read-all complaints:status complaints:write letters:write"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.String(512), nullable=False, server_default=""))
    keys = sa.table("api_keys", sa.column("reads_all", sa.Boolean()), sa.column("scopes"))
    op.execute(
        keys.update().values(
            scopes=sa.case((keys.c.reads_all, WITH_READ_ALL), else_=WHAT_EVERY_KEY_DID)
        )
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("reads_all")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("reads_all", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    keys = sa.table("api_keys", sa.column("reads_all", sa.Boolean()), sa.column("scopes"))
    op.execute(keys.update().values(reads_all=keys.c.scopes.contains("complaints:read-all")))
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
