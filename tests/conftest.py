"""Shared fixtures: settings in a temp folder, a private broker namespace, real peers.

Tests under ``tests/unit`` are marked ``unit`` and need nothing but Python;
tests under ``tests/integration`` are marked ``integration`` and talk to the
machine's RabbitMQ and PostgreSQL, or to subprocesses of ``intake``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings, load_settings
from gateway.lib.services import Services, build_services
from gateway.store import Store, open_store
from tests.peers.processes import IntakeProcesses, intake_env
from tests.peers.services import (
    RABBITMQ_URL,
    create_postgres_database,
    delete_rabbitmq_namespace,
    drop_postgres_database,
    require_rabbitmq,
)
from tests.peers.tcpproxy import TcpProxy

# Session-wide peers shared by several test modules: one browser, one Dovecot, one spamd.
pytest_plugins = [
    "tests.peers.browser",
    "tests.peers.dovecot",
    "tests.peers.spamd",
    "tests.peers.twilio",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "unit" in parts:
            item.add_marker(pytest.mark.unit)
        elif "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("slow") and not os.environ.get("INTAKE_SLOW_TESTS"):
            item.add_marker(pytest.mark.skip(reason="slow: set INTAKE_SLOW_TESTS=1"))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; the developer's INTAKE_* must not leak in."""
    for key in list(os.environ):
        if key.startswith("INTAKE_") and key != "INTAKE_SLOW_TESTS":
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _fresh_embedded_broker_state() -> None:
    """Each test's embedded broker starts with no bindings known to this process.

    kombu's filesystem transport keeps declared exchanges and bindings in one
    process-wide table, and skips writing a binding to the broker's folder
    when that table already has it. One process serves one data folder, so
    the gateway never meets this; a test process meets a new folder in every
    test, and would find a later test's events silently unroutable.
    """
    from kombu.transport import filesystem, virtual

    filesystem.Transport.global_state = virtual.BrokerState()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "var"
    folder.mkdir()
    return folder


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Embedded defaults (SQLite, filesystem broker) in a temp folder."""
    return load_settings(data_dir=data_dir, relay_poll_interval=0.05, relay_max_backoff=1.0)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The gateway's services on ``settings`` (a module may define its own)."""
    built = build_services(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def topology_prefix() -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    yield prefix
    delete_rabbitmq_namespace(prefix)


@pytest.fixture
def amqp_settings(data_dir: Path, topology_prefix: str) -> Settings:
    """SQLite store, the machine's RabbitMQ, a namespace of exchanges and queues for this test."""
    require_rabbitmq()
    return load_settings(
        data_dir=data_dir,
        broker_url=RABBITMQ_URL,
        topology_prefix=topology_prefix,
        relay_poll_interval=0.05,
        relay_max_backoff=1.0,
        confirm_timeout=5.0,
    )


@pytest.fixture
def amqp_services(amqp_settings: Settings) -> Iterator[Services]:
    """The gateway's services on the machine's RabbitMQ, in this test's namespace."""
    built = build_services(amqp_settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url, name = create_postgres_database()
    yield url
    drop_postgres_database(name)


# -- subprocesses and a breakable link to the broker (integration tests) ----
@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Store]:
    """The store, opened once on SQLite and once on the machine's PostgreSQL."""
    overrides: dict[str, object] = {"data_dir": data_dir}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    opened = open_store(load_settings(**overrides))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def intake_processes(tmp_path: Path) -> Iterator[IntakeProcesses]:
    """Start ``intake`` subprocesses; whatever still runs at teardown is stopped, then killed."""
    folder = tmp_path / "processes"
    folder.mkdir()
    processes = IntakeProcesses(workdir=folder, env=intake_env())
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def rabbitmq_proxy() -> Iterator[TcpProxy]:
    """A TCP proxy in front of the machine's RabbitMQ that a test can cut and restore."""
    require_rabbitmq()
    with TcpProxy(("127.0.0.1", 5672)) as proxy:
        yield proxy
