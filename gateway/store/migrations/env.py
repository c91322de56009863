"""Alembic environment: runs with the engine or connection the gateway hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from gateway.store.db import schema_metadata

config = context.config
target_metadata = schema_metadata()


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
