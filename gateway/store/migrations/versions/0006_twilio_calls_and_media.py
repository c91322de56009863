"""phone line: twilio calls and media to fetch

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-27

A branch of its own beside the other feature migrations (``migrate``
upgrades to "heads"). ``twilio_calls`` holds one row per CallSid (state of
the call, its language choice, recording and transcript); ``twilio_media``
one row per recording or photo to download (unique ``media_key``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = gateway.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "twilio_calls",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("account_sid", sa.String(length=64), nullable=True),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("called", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("language_method", sa.String(length=16), nullable=True),
        sa.Column("recording_sid", sa.String(length=64), nullable=True),
        sa.Column("recording_url", sa.String(length=1024), nullable=True),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("transcript_sha256", sa.String(length=64), nullable=True),
        sa.Column("transcript_language", sa.String(length=16), nullable=True),
        sa.Column("transcript_confidence", sa.Float(), nullable=True),
        sa.Column("transcript_source", sa.String(length=100), nullable=True),
        sa.Column("transcript_evidence", sa.String(length=255), nullable=True),
        sa.Column("final_status", sa.String(length=16), nullable=True),
        sa.Column("end_request", sa.Text(), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("call_sid", name=op.f("pk_twilio_calls")),
    )
    with op.batch_alter_table("twilio_calls", schema=None) as batch_op:
        batch_op.create_index("ix_twilio_calls_state_ended", ["state", "ended_at"], unique=False)

    op.create_table(
        "twilio_media",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("media_key", sa.String(length=128), nullable=False),
        sa.Column("complaint_key", sa.String(length=512), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("declared_type", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC_DATETIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attachment", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("done_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twilio_media")),
        sa.UniqueConstraint("media_key", name=op.f("uq_twilio_media_media_key")),
    )
    with op.batch_alter_table("twilio_media", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_twilio_media_complaint_key"), ["complaint_key"], unique=False
        )
        batch_op.create_index("ix_twilio_media_due", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("twilio_media", schema=None) as batch_op:
        batch_op.drop_index("ix_twilio_media_due")
        batch_op.drop_index(batch_op.f("ix_twilio_media_complaint_key"))
    op.drop_table("twilio_media")
    with op.batch_alter_table("twilio_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_twilio_calls_state_ended")
    op.drop_table("twilio_calls")
