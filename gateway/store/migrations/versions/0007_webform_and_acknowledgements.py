"""web form rate limit and acknowledgements

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-27

A branch of its own beside the other feature migrations (``migrate``
upgrades to "heads"). ``webform_attempts`` counts form posts per hashed
client address; ``acknowledgements`` holds one row per complaint (unique),
which is what makes a redelivered complaint harmless to the ack worker.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webform_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webform_attempts")),
    )
    with op.batch_alter_table("webform_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webform_attempts_client_key"), ["client_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webform_attempts_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("languages", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("document", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_acknowledgements_complaint_id_complaints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acknowledgements")),
        sa.UniqueConstraint("complaint_id", name=op.f("uq_acknowledgements_complaint_id")),
    )
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acknowledgements_reference"), ["reference"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_acknowledgements_recipient"), ["recipient"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_acknowledgements_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_acknowledgements_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acknowledgements_created_at"))
        batch_op.drop_index(batch_op.f("ix_acknowledgements_status"))
        batch_op.drop_index(batch_op.f("ix_acknowledgements_recipient"))
        batch_op.drop_index(batch_op.f("ix_acknowledgements_reference"))
    op.drop_table("acknowledgements")
    with op.batch_alter_table("webform_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webform_attempts_created_at"))
        batch_op.drop_index(batch_op.f("ix_webform_attempts_client_key"))
    op.drop_table("webform_attempts")
