"""Benchmark: outbox relays claiming batches on PostgreSQL, one and two at a time.

    .venv/bin/python bench/multi_relay_bench.py [--messages 3000] [--batch 200]

Yardstick: the single relay as it was before several instances (read a batch
with a plain SELECT, publish, mark published; no claim), on the same rows.
Then the claiming relay alone, two claiming relays in threads of one
process, and two ``intake relay --once`` processes side by side (start-up
included). After each run the inbound queue must hold exactly ``--messages``
messages: a duplicate would show there.

Needs the machine's PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672);
the database and the queues are private to the run and deleted at the end.
Prints a Markdown block.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kombu import Connection
from sqlalchemy import update

from config.settings import Settings, load_settings
from gateway.lib.services import build_services
from gateway.store.db import writing
from gateway.store.tables import OutboxRow
from router.broker import topology_for
from router.publisher import declare_topology
from router.relay import Relay, build_relay

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from relay_bench import fill_outbox

from bench.databases import postgres_database

RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
INTAKE = str(Path(sys.executable).with_name("intake"))


def fill(settings: Settings, count: int) -> None:
    """The same backlog as the single-relay benchmark."""
    fill_outbox(settings, count)


def reset(settings: Settings) -> None:
    """Every row unpublished and unclaimed again; the inbound queue emptied."""
    services = build_services(settings)
    with writing(services.store.engine) as session:
        session.execute(
            update(OutboxRow).values(published_at=None, claimed_by=None, claimed_until=None)
        )
    services.close()
    with Connection(RABBITMQ) as connection:
        connection.default_channel.queue_purge(topology_for(settings).inbound.name)


def depth(settings: Settings) -> int:
    with Connection(RABBITMQ) as connection:
        name = topology_for(settings).inbound.name
        return int(connection.default_channel.queue_declare(name, passive=True).message_count)


class UnclaimedRelay(Relay):
    """The relay before issue 9: plain SELECT of pending rows, no claim (the yardstick)."""

    def publish_pending(self):  # type: ignore[no-untyped-def]
        total = 0
        while batch := self.outbox.pending(self.policy.batch_size):
            outcome = self._ensure_publisher().publish(batch)
            self.outbox.mark_published(outcome.published)
            total += len(outcome.published)
        return total


def in_threads(settings: Settings, relays: int, unclaimed: bool = False) -> float:
    services = build_services(settings)
    made = [build_relay(services.settings, services.store) for _ in range(relays)]
    if unclaimed:
        made = [UnclaimedRelay(r.outbox, r.counters, r.publisher_factory, r.policy) for r in made]
    threads = [threading.Thread(target=relay.publish_pending) for relay in made]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for relay in made:
        relay.close()
    services.close()
    return elapsed


def in_processes(settings: Settings, env: dict[str, str], relays: int) -> float:
    start = time.perf_counter()
    running = [
        subprocess.Popen([INTAKE, "relay", "--once"], env=env, stderr=subprocess.DEVNULL)
        for _ in range(relays)
    ]
    codes = [process.wait() for process in running]
    assert codes == [0] * relays, codes
    return time.perf_counter() - start


def measure(
    name: str, settings: Settings, count: int, run: Callable[[], float]
) -> tuple[str, float, int]:
    reset(settings)
    elapsed = run()
    queued = depth(settings)
    return name, elapsed, queued


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    try:
        with (
            postgres_database(POSTGRES, "bench_relays") as database,
            tempfile.TemporaryDirectory() as folder,
        ):
            settings = load_settings(
                data_dir=Path(folder),
                database_url=database,
                broker_url=RABBITMQ,
                topology_prefix=prefix,
                relay_batch_size=args.batch,
            )
            with Connection(RABBITMQ) as connection:
                declare_topology(connection, topology_for(settings))
            fill(settings, args.messages)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")},
                "INTAKE_DATA_DIR": folder,
                "INTAKE_DATABASE_URL": database,
                "INTAKE_BROKER_URL": RABBITMQ,
                "INTAKE_TOPOLOGY_PREFIX": prefix,
                "INTAKE_RELAY_BATCH_SIZE": str(args.batch),
            }
            count = args.messages
            rows = [
                measure(
                    "yardstick: one relay, no claims",
                    settings,
                    count,
                    lambda: in_threads(settings, 1, unclaimed=True),
                ),
                measure("one claiming relay", settings, count, lambda: in_threads(settings, 1)),
                measure(
                    "two claiming relays (threads)",
                    settings,
                    count,
                    lambda: in_threads(settings, 2),
                ),
                measure(
                    "two `intake relay --once` processes",
                    settings,
                    count,
                    lambda: in_processes(settings, env, 2),
                ),
            ]
            report(rows, args)
    finally:
        with Connection(RABBITMQ) as connection:
            channel = connection.default_channel
            for queue in topology_for(load_settings(topology_prefix=prefix)).queues:
                channel.queue_delete(queue.name)


def report(rows: list[tuple[str, float, int]], args: argparse.Namespace) -> None:
    print(f"\n### Relays on PostgreSQL + RabbitMQ ({args.messages} messages, batch {args.batch})\n")
    print(f"Machine: {os.cpu_count()} cores; `{' '.join(sys.argv)}`\n")
    print("| run | seconds | messages/s | in the queue |")
    print("|---|---:|---:|---:|")
    for name, elapsed, queued in rows:
        print(f"| {name} | {elapsed:.2f} | {args.messages / elapsed:,.0f} | {queued} |")


if __name__ == "__main__":
    main()
