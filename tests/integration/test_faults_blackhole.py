"""A broker that goes silent without closing anything, seen from the whole gateway process.

``tests/integration/test_relay_outage.py`` shows one relay pass returning
within the confirm timeout on a blackholed link. Here the same fault hits a
running ``intake run`` (web, relay and workers in one process, publishing
through ``TcpProxy`` to a private RabbitMQ node): complaints keep being
accepted at their usual speed, ``/readyz`` says the broker is away within a
bound, the relay's confirm timeout fires and the messages stay in the
outbox, the process still stops promptly on SIGTERM, and once the link is
back every message arrives, once. On SIGTERM each worker must end by itself
(a polite AMQP close waits for an answer that never comes).
"""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config.settings import Settings, load_settings
from tests.peers.faults import Gateway, read_queue, sqlite_counts, start_gateway, tally
from tests.peers.processes import IntakeProcesses, wait_until
from tests.peers.rabbitmq_node import (  # noqa: F401 (fixtures)
    RabbitNode,
    broker_fixture,
    delete_namespace,
    rabbitmq_node_fixture,
)
from tests.peers.tcpproxy import TcpProxy

CONFIRM_TIMEOUT = 1.0
STRANDED = 20
# What "nothing blocks" means here, with room for a loaded 2-core machine.
ANSWER_BOUND = 5.0  # one API answer
READY_BOUND = 12.0  # /readyz: its own 2 s probe, plus the connect timeout of the handshake
STOP_BOUND = 30.0  # SIGTERM to exit: the relay's join is 15 s at most


@pytest.fixture
def proxy(broker: RabbitNode) -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", broker.port)) as link:
        yield link


@pytest.fixture
def proxied(data_dir: Path, broker: RabbitNode, proxy: TcpProxy) -> Iterator[Settings]:
    prefix = f"blackhole-{uuid.uuid4().hex[:8]}."
    yield load_settings(
        data_dir=data_dir,
        broker_url=proxy.url(),
        topology_prefix=prefix,
        confirm_timeout=CONFIRM_TIMEOUT,
        relay_poll_interval=0.05,
        relay_max_backoff=1.0,
    )
    delete_namespace(broker.url, prefix)


def post(gateway: Gateway, key: str) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    answer = httpx.post(
        f"{gateway.base}/v1/complaints",
        headers={"Authorization": f"Bearer {gateway.key}", "Idempotency-Key": key},
        json={"body": f"Réclamation {key}: transfert bloqué.", "customer": {"phone": "0612345678"}},
        timeout=60,
    )
    return answer, time.monotonic() - start


def unconfirmed_rows(database: Path) -> list[tuple[str | None, object]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        return list(
            connection.execute(
                "SELECT last_error, published_at FROM outbox WHERE published_at IS NULL"
            )
        )


def test_silent_broker_blocks_nothing_keeps_messages_and_loses_none_once_back(
    proxied: Settings,
    broker: RabbitNode,
    proxy: TcpProxy,
    intake_processes: IntakeProcesses,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = proxied.data_dir / "intake.db"
    gateway = start_gateway(intake_processes, proxied)
    first, _took = post(gateway, "before")
    wait_until(lambda: sqlite_counts(database)[1] == 1, "the relay connected and publishing")
    proxy.blackhole()

    slowest = 0.0
    for number in range(STRANDED):
        answer, took = post(gateway, f"silent-{number}")
        assert answer.status_code == 201, answer.text
        slowest = max(slowest, took)
    start = time.monotonic()
    ready = httpx.get(f"{gateway.base}/readyz", timeout=60)
    readyz_took = time.monotonic() - start
    wait_until(
        lambda: (
            len(rows := unconfirmed_rows(database)) == STRANDED
            and all(error for error, _published in rows)
        ),
        "the relay's confirm timeout to fire on every stranded row",
        timeout=60,
    )
    gateway.process.signal(signal.SIGTERM)
    start = time.monotonic()
    code = gateway.process.wait(STOP_BOUND + 30)
    stop_took = time.monotonic() - start
    stopped_log = gateway.process.stderr()

    proxy.restore()
    gateway = start_gateway(intake_processes, proxied, key=gateway.key)
    wait_until(lambda: sqlite_counts(database)[1] == STRANDED + 1, "the outbox to drain")
    events = read_queue(
        load_settings(**{**proxied.model_dump(exclude_unset=True), "broker_url": broker.url})
    )
    figures = tally(
        "broker blackholed",
        sent=STRANDED + 1,
        acknowledged={"before", *(f"silent-{n}" for n in range(STRANDED))},
        events=events,
        key_of=lambda data: data["evidence"]["idempotency_key"],
        database=database,
        extra={
            "slowest answer s": round(slowest, 2),
            "readyz s": round(readyz_took, 2),
            "SIGTERM to exit s": round(stop_took, 2),
            "relay thread ended": "relay stopped" in stopped_log,
        },
    )
    figures.report(capsys)

    assert first.status_code == 201
    assert slowest < ANSWER_BOUND
    assert ready.status_code == 503 and readyz_took < READY_BOUND
    assert code == 0 and stop_took < STOP_BOUND, gateway.process.describe()
    figures.assert_promises()
    assert figures.consumed == STRANDED + 1


# -- stopping on a silent broker: each worker must end by itself, not be abandoned -----------
def stop_on_a_silent_broker(
    proxied: Settings, proxy: TcpProxy, intake_processes: IntakeProcesses
) -> tuple[str, float]:
    """An idle gateway, its links to the broker open, the broker gone silent, then SIGTERM."""
    database = proxied.data_dir / "intake.db"
    gateway = start_gateway(intake_processes, proxied)
    assert post(gateway, "idle")[0].status_code == 201
    wait_until(lambda: sqlite_counts(database)[1] == 1, "the relay connected and publishing")
    proxy.blackhole()
    gateway.process.signal(signal.SIGTERM)
    start = time.monotonic()
    assert gateway.process.wait(STOP_BOUND + 30) == 0, gateway.process.describe()
    return gateway.process.stderr(), time.monotonic() - start


def test_sigterm_on_a_silent_broker_stops_the_relay_by_itself(
    proxied: Settings, proxy: TcpProxy, intake_processes: IntakeProcesses
) -> None:
    log, _took = stop_on_a_silent_broker(proxied, proxy, intake_processes)
    # Closing its AMQP connection used to wait forever for the broker's CloseOk.
    assert "relay stopped" in log


def test_sigterm_on_a_silent_broker_stops_the_acknowledgement_worker_by_itself(
    proxied: Settings, proxy: TcpProxy, intake_processes: IntakeProcesses
) -> None:
    log, took = stop_on_a_silent_broker(proxied, proxy, intake_processes)
    # Cancelling its consumer and closing its connection used to wait forever for the
    # broker's answers, and ``intake run`` abandoned the thread after its 15 s join.
    assert "acknowledgement worker stopped" in log
    assert took < 10.0
