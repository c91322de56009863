"""Faults of the broker itself: stopped and started under load, and messages it refuses.

The broker is a private RabbitMQ node (``tests.peers.rabbitmq_node``), never
the machine's shared one: ``rabbitmqctl stop_app`` / ``start_app`` on it is
the real outage (connections closed, port refused, durable queues kept), and
its ``max_message_size`` is 64 KiB so that RabbitMQ itself refuses a large
message. The gateway runs as ``intake run`` where the whole process matters,
and the relay runs in the test where one pass is what is looked at.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from config.settings import Settings, load_settings
from gateway.lib.services import Services, build_services
from router.relay import build_relay
from tests.peers.complaints import outbox_rows, record
from tests.peers.faults import LONG, Gateway, read_queue, sqlite_counts, start_gateway, tally
from tests.peers.processes import IntakeProcesses, wait_until
from tests.peers.rabbitmq_node import (  # noqa: F401 (fixtures)
    MAX_MESSAGE_SIZE,
    RabbitNode,
    broker_fixture,
    delete_namespace,
    rabbitmq_node_fixture,
)

COMPLAINTS = 10_000 if LONG else 1_000
RESTARTS = 3
POSTERS = 8


@pytest.fixture
def broker_settings(data_dir: Path, broker: RabbitNode) -> Iterator[Settings]:
    prefix = f"faults-{uuid.uuid4().hex[:8]}."
    yield load_settings(
        data_dir=data_dir,
        broker_url=broker.url,
        topology_prefix=prefix,
        relay_poll_interval=0.05,
        relay_max_backoff=1.0,
        confirm_timeout=5.0,
    )
    if not broker.running():
        broker.start_app()
    delete_namespace(broker.url, prefix)


# -- 1. the broker stopped and started three times under API load ------------------
def post_complaints(gateway: Gateway, count: int, seconds: float, accepted: dict[str, str]) -> None:
    """POST ``count`` complaints spread over ``seconds``, each retried until answered 2xx.

    Fills ``accepted`` (Idempotency-Key -> complaint id) as the answers come.
    """
    start = time.monotonic()
    auth = {"Authorization": f"Bearer {gateway.key}"}

    def post(number: int, client: httpx.Client) -> None:
        key = f"fault-{number}"
        body = {
            "body": f"Réclamation {number}: mon transfert de {100 + number} DH n'est pas arrivé.",
            "customer": {"phone": "+212612345678"},
            "language": "fr",
        }
        # Paced, so that the relay has work during every outage.
        time.sleep(max(0.0, start + number * seconds / count - time.monotonic()))
        deadline = time.monotonic() + 120
        while True:
            try:
                answer = client.post(
                    "/v1/complaints", json=body, headers={**auth, "Idempotency-Key": key}
                )
                if answer.status_code in (200, 201):
                    accepted[key] = answer.json()["id"]
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"complaint {key} never accepted"
            time.sleep(0.2)

    def poster(numbers: range) -> None:
        with httpx.Client(base_url=gateway.base, timeout=60) as client:
            for number in numbers:
                post(number, client)

    with ThreadPoolExecutor(POSTERS) as pool:
        shares = [range(i, count, POSTERS) for i in range(POSTERS)]
        list(pool.map(poster, shares))


def bounce(node: RabbitNode, times: int, count: int, accepted: dict[str, str]) -> int:
    """``stop_app`` then ``start_app``, ``times`` over, spread along the posting's progress."""
    steps = 2 * times + 1
    done = 0
    for step in range(1, steps):
        wait_until(
            lambda: len(accepted) >= count * step // steps, "posting to progress", timeout=300
        )
        if step % 2:
            node.stop_app()
        else:
            node.start_app()
            done += 1
    return done


def test_complaints_posted_while_the_broker_restarts_three_times_all_reach_the_queue_once(
    broker: RabbitNode,
    broker_settings: Settings,
    intake_processes: IntakeProcesses,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = start_gateway(intake_processes, broker_settings)
    accepted: dict[str, str] = {}
    with ThreadPoolExecutor(1) as background:
        cycles = background.submit(bounce, broker, RESTARTS, COMPLAINTS, accepted)
        # ~70 complaints/s in CI (well under what the API takes here), ~170/s for the long run.
        post_complaints(gateway, COMPLAINTS, 15.0 if COMPLAINTS <= 1000 else 60.0, accepted)
        assert cycles.result(timeout=600) == RESTARTS
    database = broker_settings.data_dir / "intake.db"
    wait_until(
        lambda: sqlite_counts(database)[1] >= COMPLAINTS,
        "the relay to publish every complaint",
        timeout=120 + COMPLAINTS / 50,
        interval=0.5,
    )
    events = read_queue(broker_settings)
    log = gateway.process.stderr()
    figures = tally(
        "API complaints, broker stopped and started 3 times",
        sent=COMPLAINTS,
        acknowledged=accepted,
        events=events,
        key_of=lambda data: data["evidence"]["idempotency_key"],
        database=database,
        extra={"outages the relay saw": log.count("broker reachable again")},
    )
    figures.report(capsys)

    figures.assert_promises()
    assert figures.stored == COMPLAINTS
    assert {str(event["id"]) for event in events} == set(accepted.values())
    # The broker went away under the relay at least once (all three restarts
    # happen whatever the relay was doing; an idle relay may not notice one).
    relay_lines = "\n".join(line for line in log.splitlines() if "intake.relay" in line)
    assert log.count("broker reachable again") >= 1, relay_lines


# -- 5. a message larger than the broker takes -------------------------------------------
@pytest.fixture
def services(broker_settings: Settings) -> Iterator[Services]:
    built = build_services(
        load_settings(**broker_settings.model_dump(exclude_unset=True), relay_batch_size=50)
    )
    try:
        yield built
    finally:
        built.close()


def big_complaint_text() -> str:
    """A complaint whose message is well over the node's 64 KiB, under the API's 1 MiB."""
    return "Le détail de mes opérations: " + "retrait 200 DH refusé; " * 4000


def run_relay_passes(services: Services, passes: int) -> None:
    relay = build_relay(services.settings, services.store)
    try:
        for _ in range(passes):
            relay.step()
    finally:
        relay.close()


def test_a_message_the_broker_refuses_for_its_size_is_kept_with_the_error_and_blocks_nothing(
    services: Services, broker_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = record(services.store).message.id
    big = record(services.store, body=big_complaint_text()).message.id
    after = record(services.store).message.id

    run_relay_passes(services, 3)

    rows = {row.event_id: row for row in outbox_rows(services.store)}
    assert len(rows[big].payload) > MAX_MESSAGE_SIZE >= len(rows[before].payload)
    assert rows[big].published_at is None, "the broker cannot have taken it"
    assert "max_message_size of 65536" in (rows[big].last_error or "")
    assert rows[before].published_at is not None and rows[after].published_at is not None
    events = read_queue(broker_settings, silence=2.0)
    with capsys.disabled():
        print(
            f"\n[fault figures] oversized message: sent 3, stored 3, published "
            f"{sum(row.published_at is not None for row in rows.values())}, consumed "
            f"{len({e['id'] for e in events})}, lost 0 (kept: 1), duplicated "
            f"{len(events) - len({e['id'] for e in events})}"
        )
    assert {str(event["id"]) for event in events} == {before, after}
    # The broker closes the channel before confirming what preceded the large
    # message, so that one may be sent again once (same id); an earlier version
    # sent the batch again on every pass and never got past it.
    assert len(events) <= 3


def test_a_message_the_broker_refuses_for_its_size_is_held_not_retried(
    services: Services,
) -> None:
    big = record(services.store, body=big_complaint_text()).message.id

    run_relay_passes(services, 3)

    [row] = [row for row in outbox_rows(services.store) if row.event_id == big]
    assert row.held, row.last_error
    assert services.store.outbox.stats().held == 1


def test_a_message_over_the_configured_limit_is_held_with_the_reason_and_others_go_on(
    data_dir: Path, broker_settings: Settings
) -> None:
    # INTAKE_MAX_MESSAGE_BYTES under the broker's own limit: the relay holds it first.
    settings = load_settings(
        **broker_settings.model_dump(exclude_unset=True), max_message_bytes=32768
    )
    services = build_services(settings)
    try:
        big = record(services.store, body=big_complaint_text()).message.id
        small = record(services.store).message.id
        run_relay_passes(services, 2)
        rows = {row.event_id: row for row in outbox_rows(services.store)}
        held = services.store.outbox.stats().held
    finally:
        services.close()

    assert rows[big].held and rows[big].published_at is None
    assert "exceeds the broker limit of 32768" in (rows[big].last_error or "")
    assert held == 1
    assert [str(event["id"]) for event in read_queue(settings, silence=2.0)] == [small]
