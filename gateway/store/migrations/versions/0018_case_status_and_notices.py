"""case handling: status reports, the complaint's state, notices of a longer delay

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-20

A branch off 0014 (``migrate`` upgrades to every head).

- ``complaint_states``: one row per complaint once case management reported
  a status (``in_progress``, ``extended``, ``answered``, ``closed``); none
  means ``received``.
- ``complaint_status_history``: every report, unique per (complaint,
  status, ``at``), so a report repeated by the API or the queue is one fact.
- ``notices``: the notice of a longer delay sent to the customer after an
  ``extended`` report, and its sending.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = gateway.store.tables.UTCDateTime(timezone=True)
    op.create_table(
        "complaint_states",
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("answered_at", when, nullable=True),
        sa.Column("closed_at", when, nullable=True),
        sa.Column("extended_until", when, nullable=True),
        sa.Column("updated_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_states_complaint_id_complaints"),
        ),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_complaint_states")),
        sa.UniqueConstraint("reference", name=op.f("uq_complaint_states_reference")),
    )
    op.create_index(op.f("ix_complaint_states_status"), "complaint_states", ["status"])
    op.create_table(
        "complaint_status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("answer_due_at", when, nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("recorded_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_status_history_complaint_id_complaints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_status_history")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_complaint_status_history_dedup_key")),
    )
    op.create_index(
        op.f("ix_complaint_status_history_complaint_id"),
        "complaint_status_history",
        ["complaint_id"],
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when, nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("document", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("sent_at", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=op.f("fk_notices_complaint_id_complaints")
        ),
        sa.ForeignKeyConstraint(
            ["status_id"],
            ["complaint_status_history.id"],
            name=op.f("fk_notices_status_id_complaint_status_history"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("status_id", name=op.f("uq_notices_status_id")),
    )
    op.create_index(op.f("ix_notices_complaint_id"), "notices", ["complaint_id"])
    op.create_index(op.f("ix_notices_status"), "notices", ["status"])
    op.create_index(op.f("ix_notices_next_attempt_at"), "notices", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_table("complaint_status_history")
    op.drop_table("complaint_states")
