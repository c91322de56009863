"""Alembic environment: runs with the engine or connection the gateway hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

import channels.letters.models  # noqa: F401 (letters and staff tables, migration 0005)
import gateway.store.calls  # phone line: calls and media, migration 0006
import gateway.store.customer_facing  # noqa: F401  (web form limits, acknowledgements)
from gateway.store import checkpoints  # noqa: F401  (registers the IMAP checkpoint table)
from gateway.store.leases import LeaseRow  # noqa: F401  (leader leases, migration 0008)
from gateway.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = config.attributes["engine"]
    with engine.connect() as fresh:
        _run(fresh)
        fresh.commit()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
