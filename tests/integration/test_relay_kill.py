"""A relay killed with SIGKILL in the middle of a backlog loses nothing.

The relay marks rows published only after RabbitMQ confirmed them, so a
hard kill can cost duplicates (messages the broker had, rows not yet
marked) but never a loss; duplicates carry the same event id and payload, so
a consumer drops them by id.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kombu import Connection

from config.settings import Settings, load_settings
from gateway.lib.services import build_services
from router.broker import topology_for
from tests.peers.complaints import record
from tests.peers.processes import IntakeProcesses, env_for, wait_until
from tests.peers.services import RABBITMQ_URL

BACKLOG = 2000
BATCH_SIZE = 20


def published_count(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
        ).fetchone()
    return int(count)


def unpublished_event_ids(database: Path) -> set[str]:
    """Event ids of the rows not marked published: what the broker had not confirmed."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute("SELECT event_id FROM outbox WHERE published_at IS NULL")
        return {str(event_id) for (event_id,) in rows}


def inbound_depth(settings: Settings) -> int:
    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        queue = topology_for(settings).inbound.name
        _name, messages, _consumers = connection.default_channel.queue_declare(queue, passive=True)
    return int(messages)


def test_relay_killed_mid_backlog_loses_nothing_and_duplicates_only_unconfirmed_rows(
    amqp_settings: Settings, intake_processes: IntakeProcesses
) -> None:
    settings = load_settings(
        **amqp_settings.model_dump(exclude_unset=True), relay_batch_size=BATCH_SIZE
    )
    services = build_services(settings)
    try:
        # Writers in parallel: their fsyncs overlap, the backlog builds faster.
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda _: record(services.store), range(BACKLOG))
            created = {result.message.id for result in results}
    finally:
        services.close()
    database = settings.data_dir / "intake.db"
    env = env_for(settings)

    relay = intake_processes.start("relay", env=env)
    wait_until(
        lambda: published_count(database) >= 5 * BATCH_SIZE or not relay.running(),
        "the relay to publish a few batches",
        interval=0.01,
    )
    relay.signal(signal.SIGKILL)
    relay.wait()
    # Read before anything else touches the outbox: the marks the killed relay left.
    unmarked_at_kill = unpublished_event_ids(database)
    assert relay.popen.returncode == -signal.SIGKILL, relay.describe()
    assert unmarked_at_kill, "the relay finished before it was killed"

    # The restarted relay's batch size does not matter for the bound below.
    restarted = intake_processes.run(
        "relay", "--once", env={**env, "INTAKE_RELAY_BATCH_SIZE": "500"}
    )
    assert restarted.popen.returncode == 0, restarted.describe()
    assert published_count(database) == BACKLOG

    # Every message the broker confirmed is in the queue: at least the backlog.
    def whole_backlog() -> int:
        depth = inbound_depth(settings)
        return depth if depth >= BACKLOG else 0

    depth = wait_until(whole_backlog, "the whole backlog in the inbound queue")
    consumer = intake_processes.run("consume", "--count", str(depth), "--timeout", "30", env=env)
    assert consumer.popen.returncode == 0, consumer.describe()
    assert inbound_depth(settings) == 0
    lines = [line for line in consumer.stdout().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    copies = Counter(event["id"] for event in events)

    assert set(copies) == created  # nothing lost
    # The relay publishes one batch at a time and marks it in one transaction
    # as soon as the broker confirmed it, before it sends the next batch. So
    # at the kill at most one batch was on the broker but not marked; only
    # those rows are sent again.
    duplicates = len(events) - len(created)
    assert duplicates <= BATCH_SIZE
    # And only rows left unmarked at the kill: a row marked published is never sent again.
    duplicated = {event_id for event_id, count in copies.items() if count > 1}
    assert duplicated <= unmarked_at_kill, sorted(duplicated - unmarked_at_kill)
    # A duplicate is the same event byte for byte: a consumer drops it by id.
    first_copy: dict[object, str] = {}
    for line, event in zip(lines, events, strict=True):
        assert first_copy.setdefault(event["id"], line) == line
