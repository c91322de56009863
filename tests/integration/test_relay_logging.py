"""The relay logs a broker outage once when it starts and once when it ends.

An operator searching the logs must see one warning per outage, however many
passes fail and whatever the broker does while it is away:

- refused: the broker is down (``TcpProxy.refuse`` in front of the machine's
  RabbitMQ); every pass raises.
- blocked: the broker is silent: it answers but stops taking messages (a
  memory alarm on a private RabbitMQ node, as a full disk or memory would
  raise); every pass connects, then times out waiting for its confirms, and
  nothing raises.

A blackholed link (``tests/integration/test_faults_blackhole.py``) is the two
at once: the first pass times out on its confirms, the next ones fail to
connect; the log is the same.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import Settings, load_settings
from gateway.lib.services import build_services
from router.relay import build_relay
from tests.integration.test_relay_outage import relay_until_drained
from tests.peers.complaints import record
from tests.peers.rabbitmq_node import (  # noqa: F401 (fixtures)
    RabbitNode,
    broker_fixture,
    delete_namespace,
    rabbitmq_node_fixture,
)
from tests.peers.tcpproxy import TcpProxy

CONFIRM_TIMEOUT = 1.0
FAILING_PASSES = 3
# RabbitMQ's default memory watermark; the private node's configuration keeps it.
USUAL_WATERMARK = "0.4"


@dataclass
class Outage:
    settings: Settings
    begin: Callable[[], None]
    end: Callable[[], None]


def settings_for(data_dir: Path, broker_url: str, prefix: str) -> Settings:
    return load_settings(
        data_dir=data_dir,
        broker_url=broker_url,
        topology_prefix=prefix,
        confirm_timeout=CONFIRM_TIMEOUT,
        relay_poll_interval=0.05,
        relay_max_backoff=1.0,
    )


@pytest.fixture
def refused(data_dir: Path, topology_prefix: str, rabbitmq_proxy: TcpProxy) -> Outage:
    settings = settings_for(data_dir, rabbitmq_proxy.url(), topology_prefix)
    return Outage(settings, rabbitmq_proxy.refuse, rabbitmq_proxy.restore)


@pytest.fixture
def blocked(data_dir: Path, broker: RabbitNode) -> Iterator[Outage]:
    prefix = f"blocked-{uuid.uuid4().hex[:8]}."

    def begin() -> None:
        broker.ctl("set_vm_memory_high_watermark", "0")  # 0: block every publisher now

    def end() -> None:
        broker.ctl("set_vm_memory_high_watermark", USUAL_WATERMARK)

    try:
        yield Outage(settings_for(data_dir, broker.url, prefix), begin, end)
    finally:
        end()  # the node is shared by the session's other tests
        delete_namespace(broker.url, prefix)


def relay_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "intake.relay" and record.levelno >= logging.WARNING
    ]


@pytest.mark.parametrize("kind", ["refused", "blocked"])
def test_a_broker_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    outage: Outage = request.getfixturevalue(kind)
    services = build_services(outage.settings)
    relay = build_relay(services.settings, services.store)
    try:
        record(services.store)
        relay.step()  # the link is open and the topology declared before the outage
        assert services.store.outbox.stats().published == 1
        outage.begin()
        with caplog.at_level(logging.WARNING, logger="intake.relay"):
            for _ in range(FAILING_PASSES):
                record(services.store)
                relay.step()
            assert services.store.outbox.stats().pending == FAILING_PASSES
            outage.end()
            relay_until_drained(relay, services)
    finally:
        relay.close()
        services.close()

    warnings = relay_warnings(caplog)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("broker unavailable ("), warnings
    assert re.fullmatch(
        rf"broker reachable again after [\d.]+ s and {FAILING_PASSES} failed attempt\(s\)",
        warnings[1],
    ), warnings
