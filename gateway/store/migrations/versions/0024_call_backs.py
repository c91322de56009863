"""calls to return: missed calls and calls without a message, for staff to call back

Revision ID: 0024
Revises: 0014
Create Date: 2026-12-06

A branch off 0014 (``migrate`` upgrades to every head).

- ``call_backs``: one row per call on the 0520020915 line that ended
  without a usable message (missed, out of hours without a message, an
  empty message): the caller's number (E.164), the CallSid, the language
  chosen, when the call came in, why, the call's complaint reference when
  it has one, and who called back, when, with what outcome.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0024"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = gateway.store.tables.UTCDateTime(timezone=True)
    op.create_table(
        "call_backs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=True),
        sa.Column("done_at", when, nullable=True),
        sa.Column("done_by", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_backs")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_call_backs_call_sid")),
    )
    op.create_index(op.f("ix_call_backs_received_at"), "call_backs", ["received_at"])
    op.create_index(op.f("ix_call_backs_done_at"), "call_backs", ["done_at"])


def downgrade() -> None:
    op.drop_table("call_backs")
