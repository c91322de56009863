"""Benchmark: outbox relay vs. a bare kombu per-message-confirm loop; API intake rate.

    .venv/bin/python bench/relay_bench.py [--messages 5000] [--posts 2000] [--concurrency 20]
                                          [--json]

Needs the machine's RabbitMQ (127.0.0.1:5672). Everything it declares lives
under a private prefix and is deleted at the end. Prints a Markdown block for
docs/benchmarks.md, or with ``--json`` the figures for ``bench/suite.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from kombu import Connection, Producer

from config.settings import Settings, load_settings
from gateway.lib.services import build_services
from normalizer.contract import Channel, Customer
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.pipeline import normalize
from router.broker import topology_for
from router.publisher import declare_topology
from router.relay import build_relay

RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parents[1]


def fill_outbox(settings: Settings, count: int) -> list[tuple[str, bytes]]:
    """Record ``count`` complaints; returns their (routing key, payload) for the yardstick."""
    services = build_services(settings)
    template = normalize(
        ComplaintDraft(
            channel=Channel.API,
            received_at=datetime.now(UTC),
            body="Bonjour, mon transfert de 1500 DH n'est pas arrivé depuis trois jours.",
            customer=Customer(name="Bench", phone="+212661234567"),
        )
    )
    for index in range(count):
        draft = ComplaintDraft(**{**template.__dict__, "attachments": []})
        raw = RawInput(
            channel=Channel.API,
            data=f"bench {index}".encode(),
            content_type="text/plain",
            received_at=draft.received_at,
            dedup_key=f"bench:{index}",
        )
        services.store.complaints.record_complaint(raw, draft)
    items = services.store.outbox.pending(count)
    services.close()
    return [(item.routing_key, item.payload) for item in items]


def time_relay(settings: Settings) -> float:
    services = build_services(settings)
    relay = build_relay(services.settings, services.store)
    start = time.perf_counter()
    result = relay.publish_pending()
    elapsed = time.perf_counter() - start
    relay.close()
    assert result.complete, "relay did not publish everything"
    services.close()
    return elapsed


def time_bare_loop(settings: Settings, payloads: list[tuple[str, bytes]]) -> float:
    topology = topology_for(settings)
    with Connection(RABBITMQ, transport_options={"confirm_publish": True}) as connection:
        declare_topology(connection, topology)
        producer = Producer(connection.channel(), exchange=topology.exchange)
        start = time.perf_counter()
        for routing_key, payload in payloads:
            producer.publish(
                payload,
                routing_key=routing_key,
                content_type="application/cloudevents+json",
                content_encoding="utf-8",
                delivery_mode=2,
                mandatory=True,
            )
        return time.perf_counter() - start


def purge(settings: Settings) -> None:
    topology = topology_for(settings)
    with Connection(RABBITMQ) as connection:
        channel = connection.channel()
        for queue in topology.queues:
            channel.queue_delete(queue.name)
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            channel.exchange_delete(exchange.name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def post_all(base: str, key: str, posts: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(posts):
        queue.put_nowait(index)
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            body = {
                "body": f"Réclamation numéro {index}: carte bloquée au guichet.",
                "customer": {"name": "Bench", "phone": "0661234567"},
            }
            start = time.perf_counter()
            response = await client.post(f"{base}/v1/complaints", json=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 201, response.text

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies


def api_intake(posts: int, concurrency: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {
            **os.environ,
            "INTAKE_DATA_DIR": folder,
            "INTAKE_HTTP_PORT": str(port),
            "INTAKE_LOG_LEVEL": "WARNING",
        }
        intake = str(Path(sys.executable).with_name("intake"))
        key = subprocess.run(
            [intake, "api-key", "create", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        server = subprocess.Popen([intake, "web"], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            start = time.perf_counter()
            latencies = asyncio.run(post_all(base, key, posts, concurrency))
            elapsed = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=30)
    quantiles = statistics.quantiles(latencies, n=100)
    return posts / elapsed, quantiles[49] * 1000, quantiles[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            data_dir=Path(folder),
            broker_url=RABBITMQ,
            topology_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
            relay_batch_size=500,
        )
        try:
            print(f"filling the outbox with {args.messages} complaints…", file=sys.stderr)
            payloads = fill_outbox(settings, args.messages)
            relay_seconds = time_relay(settings)
            bare_seconds = time_bare_loop(settings, payloads)
        finally:
            purge(settings)
    relay_rate = args.messages / relay_seconds
    bare_rate = args.messages / bare_seconds
    print(
        f"measuring API intake: {args.posts} POSTs at concurrency {args.concurrency}…",
        file=sys.stderr,
    )
    rate, p50, p99 = api_intake(args.posts, args.concurrency)
    batch = settings.relay_batch_size
    if args.json:
        figures = {
            "messages": args.messages,
            "batch_size": batch,
            "relay_rate": relay_rate,
            "bare_rate": bare_rate,
            "posts": args.posts,
            "concurrency": args.concurrency,
            "api_rate": rate,
            "api_p50_ms": p50,
            "api_p99_ms": p99,
        }
        print(json.dumps(figures))
        return
    rows = [
        (f"relay (batched confirms, {batch}/batch)", f"{relay_rate:,.0f} msg/s"),
        ("bare kombu loop, confirm_publish=True", f"{bare_rate:,.0f} msg/s"),
        ("ratio relay / bare", f"{relay_rate / bare_rate:.1f}x"),
        (
            f"API intake, {args.posts} POSTs, concurrency {args.concurrency}",
            f"{rate:,.0f} complaints/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        ),
    ]
    print("\n".join(f"| {name} | {value} |" for name, value in rows))


if __name__ == "__main__":
    main()
