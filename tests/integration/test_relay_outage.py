"""The relay when RabbitMQ goes away: refused, or silent (blackholed), then back.

The gateway reaches the broker through ``TcpProxy``, which can refuse or
blackhole the link without disturbing the machine's RabbitMQ; consumers read
the real broker directly.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kombu import Connection

from config.settings import Settings, load_settings
from gateway.app import create_app
from gateway.lib.services import Services, build_services
from router.broker import topology_for
from router.relay import PUBLISH_ERRORS, Relay, build_relay
from tests.peers.complaints import outbox_rows, record
from tests.peers.processes import IntakeProcesses, env_for, wait_until
from tests.peers.runners import normalize_captured
from tests.peers.services import RABBITMQ_URL
from tests.peers.tcpproxy import TcpProxy

CONFIRM_TIMEOUT = 1.0


@pytest.fixture
def proxied_settings(data_dir: Path, topology_prefix: str, rabbitmq_proxy: TcpProxy) -> Settings:
    return load_settings(
        data_dir=data_dir,
        broker_url=rabbitmq_proxy.url(),
        topology_prefix=topology_prefix,
        confirm_timeout=CONFIRM_TIMEOUT,
        relay_batch_size=50,
    )


@pytest.fixture
def services(proxied_settings: Settings) -> Iterator[Services]:
    built = build_services(proxied_settings)
    try:
        yield built
    finally:
        built.close()


def relay_until_drained(relay: Relay, services: Services, timeout: float = 60.0) -> None:
    """Run the relay's loop by hand (without its backoff sleeps) until the outbox is empty."""

    def drained() -> bool:
        relay.step()
        return services.store.outbox.stats().pending == 0

    wait_until(drained, "the outbox to drain", timeout=timeout, interval=0.1)


def consume_all(
    intake_processes: IntakeProcesses, settings: Settings, count: int
) -> list[dict[str, object]]:
    """Read ``count`` messages from the real broker (not through the proxy), then check for more."""
    env = env_for(settings, broker_url=RABBITMQ_URL)
    consumer = intake_processes.run("consume", "--count", str(count), "--timeout", "30", env=env)
    assert consumer.popen.returncode == 0, consumer.describe()
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        queue = topology_for(settings).inbound.name
        _name, left, _consumers = connection.default_channel.queue_declare(queue, passive=True)
    assert left == 0, "more messages than complaints"
    return consumer.json_lines()


def test_complaints_accepted_while_the_broker_is_down_all_arrive_once(
    proxied_settings: Settings,
    services: Services,
    rabbitmq_proxy: TcpProxy,
    intake_processes: IntakeProcesses,
) -> None:
    key = services.store.api_keys.create("crm")
    client = TestClient(create_app(services))
    relay = build_relay(services.settings, services.store)
    rabbitmq_proxy.refuse()

    accepted = []
    for number in range(200):
        response = client.post(
            "/v1/complaints",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "body": f"Panne {number} ({uuid.uuid4()}): mon transfert n'est pas arrivé.",
                "customer": {"phone": "+212612345678"},
                "language": "fr",
            },
        )
        assert response.status_code == 201, response.text
        accepted.append(response.json()["id"])
    assert normalize_captured(services) == 200
    for _attempt in range(2):
        relay.step()
    assert services.store.outbox.stats().pending == 200
    assert services.store.counters.all()[PUBLISH_ERRORS] == 2 * 50  # two failed batches

    rabbitmq_proxy.restore()
    relay_until_drained(relay, services)
    relay.close()

    received = [event["id"] for event in consume_all(intake_processes, proxied_settings, 200)]
    assert len(received) == 200
    assert set(received) == set(accepted)


def test_blackholed_broker_times_out_confirms_and_keeps_messages_pending(
    proxied_settings: Settings,
    services: Services,
    rabbitmq_proxy: TcpProxy,
    intake_processes: IntakeProcesses,
) -> None:
    relay = build_relay(services.settings, services.store)
    first = record(services.store).message.id
    relay.step()  # opens the link and declares the topology while the broker answers
    assert services.store.outbox.stats().pending == 0
    rabbitmq_proxy.blackhole()
    stranded = {record(services.store).message.id for _ in range(5)}

    # Bounded by the confirm timeout, with a wide margin for a loaded machine;
    # run in a thread so a relay stuck on the silent link fails the test
    # instead of hanging it.
    step = threading.Thread(target=relay.step, daemon=True)
    step.start()
    step.join(CONFIRM_TIMEOUT + 14)

    assert not step.is_alive(), "relay.step() still waiting on a silent broker"
    rows = [row for row in outbox_rows(services.store) if row.event_id in stranded]
    assert len(rows) == 5
    assert all(row.published_at is None for row in rows)
    assert all("no confirm" in (row.last_error or "") for row in rows)

    rabbitmq_proxy.restore()
    relay_until_drained(relay, services)
    relay.close()

    received = Counter(str(e["id"]) for e in consume_all(intake_processes, proxied_settings, 6))
    assert received == Counter({first, *stranded})  # each one, once
