"""A new database built in one step has exactly the schema the migrations build.

``migrate`` gives a database without tables the models' schema at once and
stamps it at the newest revision; an existing one is migrated. Both must
end up the same, table by table, on SQLite and on PostgreSQL, or a store
made today would differ from one that was upgraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from gateway.store.db import alembic_config, create_store_engine, migrate, schema_metadata
from tests.peers.services import create_postgres_database, drop_postgres_database


def described(engine: Engine) -> dict[str, Any]:
    """Everything the inspector says of each table, in a comparable form."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            # By name: a migration adds its columns at the end, a new table has
            # them in the model's order; nothing reads columns by position.
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ),
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
        }
    with engine.connect() as connection:
        tables["alembic_version"] = sorted(
            row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))
        )
    return tables


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Engine, Engine]]:
    names: list[str] = []
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / name}.db" for name in ("migrated", "created")]
    else:
        databases = [create_postgres_database() for _ in range(2)]
        urls = [url for url, _name in databases]
        names = [name for _url, name in databases]
    engines = [create_store_engine(url) for url in urls]
    try:
        yield engines[0], engines[1]
    finally:
        for engine in engines:
            engine.dispose()
        for name in names:
            drop_postgres_database(name)


def test_a_new_database_gets_the_schema_the_migrations_build(
    two_databases: tuple[Engine, Engine],
) -> None:
    migrated, created = two_databases
    command.upgrade(alembic_config(migrated), "heads")  # every migration, one by one

    migrate(created)  # a database without tables: built in one step

    assert described(created) == described(migrated)
    with created.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, schema_metadata()) == []


def test_an_existing_database_is_migrated_not_rebuilt(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        command.upgrade(alembic_config(engine), "0001")  # a store from the first release
        with engine.begin() as connection:
            assert "leases" not in inspect(connection).get_table_names()

        migrate(engine)

        assert "leases" in inspect(engine).get_table_names()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, schema_metadata()) == []
    finally:
        engine.dispose()
