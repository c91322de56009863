"""staff: roles, password change date, idle sessions, login throttling, audit trail

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-15

A branch off 0010 (other branches add 0011 and 0013 beside it; ``migrate``
upgrades to every head).

- ``staff_users.role``: ``mailroom``, ``operator`` or ``admin``. Users made
  before roles existed had every right: they become ``admin`` (a behaviour
  change to review: ``intake staff set-role NAME ROLE`` narrows them).
- ``staff_users.password_changed_at``, ``staff_sessions.last_seen_at`` (the
  idle timeout).
- ``staff_login_throttle`` (failed logins per account and per address),
  ``staff_login_tokens`` (login form tokens already used), ``staff_audit``
  (every staff action).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column(
                "role", sa.String(length=16), nullable=False, server_default=sa.text("'admin'")
            )
        )
        batch.add_column(
            sa.Column(
                "password_changed_at",
                gateway.store.tables.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    # Existing users got 'admin' above; new rows default to the narrowest role.
    with op.batch_alter_table("staff_users") as batch:
        batch.alter_column(
            "role",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            server_default=sa.text("'mailroom'"),
        )
    with op.batch_alter_table("staff_sessions") as batch:
        batch.add_column(
            sa.Column(
                "last_seen_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_table(
        "staff_login_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column(
            "last_failure_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("locked_until", gateway.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_staff_login_throttle")),
    )
    with op.batch_alter_table("staff_login_throttle") as batch:
        batch.create_index(
            batch.f("ix_staff_login_throttle_last_failure_at"), ["last_failure_at"], unique=False
        )
    op.create_table(
        "staff_login_tokens",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_login_tokens")),
    )
    with op.batch_alter_table("staff_login_tokens") as batch:
        batch.create_index(
            batch.f("ix_staff_login_tokens_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", gateway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_audit")),
    )
    with op.batch_alter_table("staff_audit") as batch:
        batch.create_index(batch.f("ix_staff_audit_at"), ["at"], unique=False)
        batch.create_index(batch.f("ix_staff_audit_actor"), ["actor"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_audit") as batch:
        batch.drop_index(batch.f("ix_staff_audit_actor"))
        batch.drop_index(batch.f("ix_staff_audit_at"))
    op.drop_table("staff_audit")
    with op.batch_alter_table("staff_login_tokens") as batch:
        batch.drop_index(batch.f("ix_staff_login_tokens_expires_at"))
    op.drop_table("staff_login_tokens")
    with op.batch_alter_table("staff_login_throttle") as batch:
        batch.drop_index(batch.f("ix_staff_login_throttle_last_failure_at"))
    op.drop_table("staff_login_throttle")
    with op.batch_alter_table("staff_sessions") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("password_changed_at")
        batch.drop_column("role")
