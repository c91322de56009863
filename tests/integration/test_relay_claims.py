"""Several relays on one PostgreSQL outbox and one RabbitMQ: no message published twice.

Each relay claims its own batches (``SELECT ... FOR UPDATE SKIP LOCKED``,
then a lease stamped on the rows), publishes them with confirms, and marks
only the rows it still holds. A claim whose relay died lapses: on this
machine at once (the process is gone), from another machine when its lease
runs out.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update

from config.settings import Settings, load_settings
from gateway.lib.services import Services, build_services
from gateway.store.db import writing
from gateway.store.tables import OutboxRow
from router.consumer import consume_messages
from router.relay import Relay, build_relay
from tests.peers.complaints import record
from tests.peers.processes import wait_until

BACKLOG = 400


@pytest.fixture
def services(amqp_settings: Settings, postgres_url: str) -> Iterator[Services]:
    settings = load_settings(
        **amqp_settings.model_dump(exclude_unset=True),
        database_url=postgres_url,
        relay_batch_size=10,
    )
    built = build_services(settings)
    try:
        yield built
    finally:
        built.close()


def _record_backlog(services: Services, count: int) -> set[str]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return {
            result.message.id for result in pool.map(lambda _: record(services.store), range(count))
        }


def _consume_all(settings: Settings, expected: int) -> list[str]:
    ids: list[str] = []
    consume_messages(settings, lambda body: ids.append(json.loads(body)["id"]), timeout=3)
    assert len(ids) >= expected
    return ids


def _relay(services: Services, owner: str) -> Relay:
    relay = build_relay(services.settings, services.store)
    relay.owner = owner
    return relay


def test_two_relays_share_a_backlog_and_publish_each_message_once(services: Services) -> None:
    created = _record_backlog(services, BACKLOG)
    relays = [_relay(services, f"{services.settings.topology_prefix}relay-{n}") for n in (1, 2)]
    counts = Counter[str]()
    stop = threading.Event()

    def run(relay: Relay) -> None:
        while not stop.is_set():
            counts[relay.owner] += relay.publish_pending().published

    threads = [threading.Thread(target=run, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: services.store.outbox.stats().pending == 0, "the backlog to drain")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        for relay in relays:
            relay.close()

    ids = _consume_all(services.settings, BACKLOG)
    assert Counter(ids) == Counter(created)  # each one exactly once
    assert sum(counts.values()) == BACKLOG
    assert all(counts[relay.owner] > 0 for relay in relays), counts


def _claim_all_as(services: Services, owner: str, lease: float) -> int:
    return len(services.store.outbox.claim(BACKLOG, owner, lease))


def test_rows_claimed_by_a_relay_elsewhere_wait_for_its_lease(services: Services) -> None:
    _record_backlog(services, 5)
    assert _claim_all_as(services, "other-machine:4242:abcdef", lease=3) == 5
    relay = _relay(services, "here")
    try:
        assert relay.publish_pending().published == 0  # still that relay's
        wait_until(lambda: relay.publish_pending().published == 5, "the lease to lapse", timeout=15)
    finally:
        relay.close()


def test_rows_claimed_by_a_dead_relay_of_this_machine_are_taken_at_once(
    services: Services,
) -> None:
    import socket
    import subprocess

    _record_backlog(services, 5)
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert _claim_all_as(services, f"{socket.gethostname()}:{dead.pid}:abcdef", lease=600) == 5
    relay = _relay(services, "here")
    try:
        assert relay.publish_pending().published == 5
    finally:
        relay.close()


def test_a_relay_does_not_mark_rows_another_relay_took_over(services: Services) -> None:
    _record_backlog(services, 3)
    items = services.store.outbox.claim(10, "slow-relay", lease=600)
    with writing(services.store.engine) as session:  # its lease lapsed, another relay took them
        session.execute(update(OutboxRow).values(claimed_by="fast-relay"))
    marked = services.store.outbox.mark_published([item.id for item in items], owner="slow-relay")
    assert marked == 0
    assert services.store.outbox.mark_published([i.id for i in items], owner="fast-relay") == 3
