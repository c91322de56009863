"""The machine's real PostgreSQL and RabbitMQ, as the tests use them.

Each test gets its own PostgreSQL database and its own prefix of exchange
and queue names on RabbitMQ, removed afterwards, so tests never see each
other's messages.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

import pytest

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_rabbitmq() -> None:
    if not port_open("127.0.0.1", 5672):
        pytest.fail("RabbitMQ is not listening on 127.0.0.1:5672 (.ci/run starts it)")


def delete_rabbitmq_namespace(prefix: str) -> None:
    """Delete the queues and exchanges a test declared under ``prefix``."""
    if not port_open("127.0.0.1", 5672):
        return
    from kombu import Connection

    from router.topology import build_topology

    topology = build_topology(prefix)
    with Connection(RABBITMQ_URL, connect_timeout=3) as connection:
        channel = connection.channel()
        for queue in topology.queues:
            try:
                channel.queue_delete(queue.name)
            except Exception:
                channel = connection.channel()
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            try:
                channel.exchange_delete(exchange.name)
            except Exception:
                channel = connection.channel()


def _admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)


def create_postgres_database() -> tuple[str, str]:
    if not port_open("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not listening on 127.0.0.1:5432 (.ci/run starts it)")
    name = f"intake_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, name


def drop_postgres_database(name: str) -> None:
    with _admin_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)
