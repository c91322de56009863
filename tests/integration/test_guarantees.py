"""Promises the README makes that no other test reads back from the peer that keeps them.

- The SQLite store runs in WAL mode with ``synchronous=FULL``: a commit is on
  disk before the source is acknowledged.
- On RabbitMQ the relay declares a durable topic exchange, a quorum
  ``complaints.inbound`` that dead-letters to ``complaints.dlx``, and a
  durable ``complaints.dead``; read back with ``rabbitmqctl``, as an
  operator would.
- An API key is stored as its sha256 only: after ``intake api-key create``
  the clear key is nowhere in the database.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from sqlalchemy import text

from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store.apikeys import hash_key
from gateway.store.db import reading
from router.broker import topology_for
from router.relay import build_relay
from tests.peers.complaints import record
from tests.peers.processes import IntakeProcesses, env_for

SQLITE_SYNCHRONOUS_FULL = 2


def broker_listing(what: str, *columns: str) -> list[dict[str, Any]]:
    """``rabbitmqctl list_<what>`` on the machine's broker (vhost /), one dict a row."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed (it comes with rabbitmq-server)")
    done = subprocess.run(
        ["rabbitmqctl", "list_" + what, "-q", "--formatter", "json", *columns],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"rabbitmqctl list_{what}: {done.stderr or done.stdout}"
    return list(json.loads(done.stdout))


def named(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [row for row in rows if row["name"] == name]
    assert len(found) == 1, f"{name} not on the broker"
    return found[0]


def queue_arguments(row: dict[str, Any]) -> dict[str, object]:
    # rabbitmqctl's JSON gives arguments as [name, AMQP type, value] triples.
    return {name: value for name, _type, value in row["arguments"]}


# -- the SQLite store --------------------------------------------------------------------
def test_sqlite_store_connections_use_wal_and_a_full_fsync_per_commit(services: Services) -> None:
    engine = services.store.engine
    assert engine.dialect.name == "sqlite"
    # Two connections open at once: each new one is set up, not only the first.
    with reading(engine) as first, reading(engine) as second:
        for session in (first, second):
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            synchronous = session.execute(text("PRAGMA synchronous")).scalar()
            assert synchronous == SQLITE_SYNCHRONOUS_FULL


# -- RabbitMQ topology ---------------------------------------------------------------------
def test_relay_declares_durable_quorum_queues_that_dead_letter_on_rabbitmq(
    amqp_settings: Settings, amqp_services: Services
) -> None:
    topology = topology_for(amqp_settings)
    record(amqp_services.store)
    relay = build_relay(amqp_services.settings, amqp_services.store)
    try:
        assert relay.publish_pending().published == 1
    finally:
        relay.close()

    exchanges = broker_listing("exchanges", "name", "type", "durable")
    queues = broker_listing("queues", "name", "type", "durable", "arguments")

    exchange = named(exchanges, topology.exchange.name)
    assert (exchange["type"], exchange["durable"]) == ("topic", True)
    dlx = named(exchanges, topology.dead_letter_exchange.name)
    assert dlx["durable"] is True
    inbound = named(queues, topology.inbound.name)
    assert (inbound["type"], inbound["durable"]) == ("quorum", True)
    assert queue_arguments(inbound)["x-dead-letter-exchange"] == dlx["name"]
    dead = named(queues, topology.dead_letters.name)
    assert (dead["type"], dead["durable"]) == ("quorum", True)


# -- API keys --------------------------------------------------------------------------
def test_api_key_created_by_the_command_is_stored_only_as_its_hash(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    created = intake_processes.run("api-key", "create", "crm", env=env_for(settings))
    assert created.popen.returncode == 0, created.describe()
    key = created.stdout().strip()
    secret = key.removeprefix("cpk_")
    assert len(secret) >= 32, key

    services = build_services(settings)
    try:
        with reading(services.store.engine) as session:
            rows = [dict(row._mapping) for row in session.execute(text("SELECT * FROM api_keys"))]
        client = services.store.api_keys.authenticate(key)
    finally:
        services.close()

    [row] = rows
    for column, value in row.items():
        assert secret not in str(value), f"api_keys.{column} holds the key"
    assert row["key_hash"] == hash_key(key)
    assert client is not None and client.name == "crm"
    database = settings.data_dir / "intake.db"
    for path in (database, database.with_name("intake.db-wal")):
        if path.exists():
            assert secret.encode() not in path.read_bytes(), f"{path.name} holds the key"
