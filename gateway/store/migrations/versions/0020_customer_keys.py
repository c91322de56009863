"""customer keys: one customer recognised across channels, by keys of their contact points

Revision ID: 0020
Revises: 0014
Create Date: 2026-12-06

A branch off 0014 (``migrate`` upgrades to every head).

- ``customer_points``: one row per contact point ever seen, by its key (an
  HMAC-SHA256 of the phone in E.164 or the lower-case e-mail under
  ``INTAKE_CUSTOMER_KEY_SECRET``, never the value), with the customer key it
  was first given.
- ``complaint_contacts``: the contact points of each complaint and the
  customer key the complaint got; ``customer.related`` and
  ``GET /v1/customers/{key}/complaints`` read it.

Complaints stored before this migration get their rows from
``intake customers backfill``: the keys need the secret, which a migration
does not have.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.store.tables

revision = "0020"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = gateway.store.tables.UTCDateTime(timezone=True)
    op.create_table(
        "customer_points",
        sa.Column("contact_key", sa.String(length=40), nullable=False),
        sa.Column("customer_key", sa.String(length=40), nullable=False),
        sa.Column("first_seen_at", when, nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name=op.f("pk_customer_points")),
    )
    op.create_index(op.f("ix_customer_points_customer_key"), "customer_points", ["customer_key"])
    op.create_table(
        "complaint_contacts",
        sa.Column("complaint_id", sa.String(length=36), nullable=False),
        sa.Column("contact_key", sa.String(length=40), nullable=False),
        sa.Column("customer_key", sa.String(length=40), nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_contacts_complaint_id_complaints"),
        ),
        sa.PrimaryKeyConstraint("complaint_id", "contact_key", name=op.f("pk_complaint_contacts")),
    )
    op.create_index(
        "ix_complaint_contacts_contact_key_received_at",
        "complaint_contacts",
        ["contact_key", "received_at"],
    )
    op.create_index(
        op.f("ix_complaint_contacts_customer_key"), "complaint_contacts", ["customer_key"]
    )


def downgrade() -> None:
    op.drop_table("complaint_contacts")
    op.drop_table("customer_points")
