"""Benchmark: web form intake vs. the partner API; acknowledgement worker vs. bare smtplib.

    .venv/bin/python bench/webform_bench.py [--posts 400] [--concurrency 8] [--acks 200]

1. Web form: ``--posts`` form POSTs (multipart, CSRF token, rate limit,
   validation, hand-off, confirmation page) against a real ``intake web``,
   at ``--concurrency``; yardstick: the same number of JSON POSTs to
   ``/v1/complaints`` on the same server (same store, same hand-off).
2. Acknowledgements: ``--acks`` complaints with an e-mail address go through
   RabbitMQ to the ack worker, which sends each through an aiosmtpd relay on
   localhost; yardstick: a bare ``smtplib`` loop sending the same number of
   messages, one connection each, to the same relay.

Needs the machine's RabbitMQ (127.0.0.1:5672); everything lives under a
private prefix, deleted at the end. Prints a Markdown block (``--json``: the
figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from kombu import Connection
from pydantic import SecretStr

from channels.handoff import hand_off
from config.settings import Settings, load_settings
from gateway.acks.worker import AckWorker
from gateway.lib.services import Services, build_services
from normalizer.contract import Channel, Customer
from normalizer.draft import ComplaintDraft, RawInput
from router.broker import topology_for
from router.publisher import declare_topology
from router.relay import build_relay

RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
INTAKE = str(Path(sys.executable).with_name("intake"))
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
TEXT = "Bonjour, mon transfert de 1500 DH vers Agadir n'est pas arrivé (demande {n})."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- 1. web form vs. API -------------------------------------------------------
async def post_forms(base: str, posts: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    numbers = iter(range(posts))

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            page = await client.get("/")
            token = TOKEN.search(page.text).group(1)  # type: ignore[union-attr]
            for n in numbers:
                fields = {"csrf_token": token, "phone": "0661234567", "text": TEXT.format(n=n)}
                start = time.perf_counter()
                answer = await client.post("/fr/", data=fields, files={"attachments": ("", b"")})
                latencies.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.status_code

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def post_api(base: str, key: str, posts: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    numbers = iter(range(posts))
    headers = {"Authorization": f"Bearer {key}"}

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
            for n in numbers:
                body = {"body": TEXT.format(n=f"api {n}"), "customer": {"phone": "0661234567"}}
                start = time.perf_counter()
                answer = await client.post("/v1/complaints", json=body)
                latencies.append(time.perf_counter() - start)
                assert answer.status_code == 201, answer.text

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return {"rate": len(latencies) / elapsed, "p50_ms": cuts[49] * 1000, "p95_ms": cuts[94] * 1000}


def intake_rates(posts: int, concurrency: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")},
            "INTAKE_DATA_DIR": folder,
            "INTAKE_HTTP_PORT": str(port),
            "INTAKE_LOG_LEVEL": "WARNING",
            "INTAKE_WEBFORM_MAX_PER_HOUR": "1000000",
        }
        key = (
            subprocess.run(
                [INTAKE, "api-key", "create", "bench"], env=env, check=True, capture_output=True
            )
            .stdout.decode()
            .strip()
        )
        server = subprocess.Popen([INTAKE, "web"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_http(base)
            results = {}
            for name, run in (
                ("web form", lambda: post_forms(base, posts, concurrency)),
                ("partner API (yardstick)", lambda: post_api(base, key, posts, concurrency)),
            ):
                start = time.perf_counter()
                latencies = asyncio.run(run())
                results[name] = summary(latencies, time.perf_counter() - start)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def _wait_http(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("intake web did not start")


# -- 2. acknowledgements vs. bare smtplib ---------------------------------------
class Counting:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"


def record_complaints(services: Services, count: int) -> None:
    now = datetime.now(UTC)
    for n in range(count):
        body = TEXT.format(n=f"ack {n}")
        raw = RawInput(Channel.API, body.encode(), "text/plain", now, f"bench-ack:{n}")
        customer = Customer(email=f"client{n}@example.ma")
        hand_off(services, raw, ComplaintDraft(Channel.API, now, body, customer=customer))


def time_worker(services: Services, handler: Counting, count: int) -> float:
    build_relay(services.settings, services.store).publish_pending()
    worker = AckWorker(services)
    stop = threading.Event()
    start = time.perf_counter()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    while handler.count < count:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join(timeout=30)
    return elapsed


def time_smtplib(port: int, count: int) -> float:
    start = time.perf_counter()
    for n in range(count):
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "contact@cashplus.ma", "x@example.ma", f"{n}"
        mail.set_content(TEXT.format(n=n))
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(mail)
    return time.perf_counter() - start


def ack_rates(count: int) -> dict[str, dict[str, float]]:
    handler = Counting()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            data_dir=Path(folder),
            broker_url=RABBITMQ,
            topology_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
            smtp_relay_url=SecretStr(f"smtp://127.0.0.1:{port}"),
            ack_max_per_recipient_per_day=count + 1,
            log_level="WARNING",
        )
        services = build_services(settings)
        try:
            record_complaints(services, count)
            worker_seconds = time_worker(services, handler, count)
            bare_seconds = time_smtplib(port, count)
        finally:
            services.close()
            purge(settings)
            controller.stop()
    return {
        "ack worker (queue → decide → row → SMTP → event)": {"rate": count / worker_seconds},
        "bare smtplib, one connection per message (yardstick)": {"rate": count / bare_seconds},
    }


def text(figures: dict[str, float]) -> str:
    if "p50_ms" not in figures:
        return f"{figures['rate']:,.1f}/s"
    return (
        f"{figures['rate']:,.0f}/s, p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms"
    )


def purge(settings: Settings) -> None:
    topology = topology_for(settings)
    with Connection(RABBITMQ) as connection:
        declare_topology(connection, topology)
        channel = connection.channel()
        for queue in topology.queues:
            channel.queue_delete(queue.name)
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            channel.exchange_delete(exchange.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--acks", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    print(f"{args.posts} form and API POSTs at concurrency {args.concurrency}…", file=sys.stderr)
    rows = intake_rates(args.posts, args.concurrency)
    print(f"{args.acks} acknowledgements…", file=sys.stderr)
    rows |= ack_rates(args.acks)
    if args.json:
        settings = {"posts": args.posts, "concurrency": args.concurrency, "acks": args.acks}
        print(json.dumps({"rows": rows, **settings}, ensure_ascii=False))
        return
    print(f"| measured ({args.posts} POSTs, c={args.concurrency}; {args.acks} acks) | rate |")
    print("|---|---|")
    print("\n".join(f"| {name} | {text(value)} |" for name, value in rows.items()))


if __name__ == "__main__":
    main()
