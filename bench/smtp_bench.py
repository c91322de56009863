"""Benchmark: the SMTP receiver (250 after a durable capture) vs. a bare aiosmtpd server.

    .venv/bin/python bench/smtp_bench.py [--messages 2000] [--clients 8]

Both servers run as their own processes on this machine, in the same run:
the bare one is aiosmtpd with a handler that only answers 250; ours is
``intake smtp serve`` on an embedded store (SQLite WAL, synchronous=FULL,
fsynced blobs) in a temp folder, with ``intake normalize-worker`` and
``intake relay`` beside it. ``--clients`` client processes, each with one
``smtplib`` connection, send distinct complaint mails back to back. After
the last 250, the run waits until every mail is a complaint whose message
the relay published (confirmed), and reports how long after the last 250.
Prints a Markdown block for docs/benchmarks.md (``--json``: the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTAKE = str(Path(sys.executable).with_name("intake"))
RECIPIENT = "contact@cashplus.ma"
WARM_UP = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def complaint(client: int, index: int) -> bytes:
    return (
        f"From: Client {client} <client{client}@example.ma>\r\n"
        f"To: Cash Plus <{RECIPIENT}>\r\n"
        f"Subject: Transfert {client}-{index} non reçu\r\n"
        f"Date: Mon, 03 Jun 2024 10:15:00 +0100\r\n"
        f"Message-ID: <bench-{client}-{index}-{time.time_ns()}@example.ma>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Bonjour,\r\n\r\nJ'ai envoyé {100 + index} DH à mon frère à Agadir, il n'a "
        "toujours rien reçu. Pouvez-vous vérifier ?\r\n\r\nMerci.\r\n"
    ).encode()


def send_batch(job: tuple[int, int, int]) -> list[float]:
    """One client: one connection, ``count`` mails; the latency of each."""
    port, client, count = job
    latencies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as session:
        session.ehlo("bench.example.ma")
        for index in range(count):
            start = time.perf_counter()
            refused = session.sendmail(
                f"client{client}@example.ma", [RECIPIENT], complaint(client, index)
            )
            latencies.append(time.perf_counter() - start)
            assert not refused
    return latencies


def published_after(database: Path, expected: int, timeout: float = 120.0) -> float:
    """Seconds until ``expected`` complaints are published (the outbox marked confirmed)."""
    import sqlite3

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with sqlite3.connect(database) as connection:
            (done,) = connection.execute(
                "SELECT count(*) FROM outbox WHERE complaint_id IS NOT NULL"
                " AND published_at IS NOT NULL"
            ).fetchone()
        if done >= expected:
            return time.perf_counter() - start
        time.sleep(0.1)
    return float("inf")


def measure(port: int, messages: int, clients: int) -> tuple[float, float, float]:
    """(messages/s, p50 ms, p99 ms) for ``messages`` spread over ``clients`` processes."""
    send_batch((port, 999, WARM_UP))
    share = [messages // clients + (1 if c < messages % clients else 0) for c in range(clients)]
    with Pool(clients) as pool:
        start = time.perf_counter()
        results = pool.map(send_batch, [(port, c, n) for c, n in enumerate(share)])
        elapsed = time.perf_counter() - start
    latencies = [item for batch in results for item in batch]
    quantiles = statistics.quantiles(latencies, n=100)
    return messages / elapsed, quantiles[49] * 1000, quantiles[98] * 1000


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


@contextmanager
def server(command: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        wait_for(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def receiver_env(folder: str, port: int, clients: int, messages: int) -> dict[str, str]:
    """``intake smtp serve``'s environment for a run of ``messages`` over ``clients``."""
    return {
        **os.environ,
        "INTAKE_DATA_DIR": folder,
        "INTAKE_SMTP_PORT": str(port),
        "INTAKE_LOG_LEVEL": "WARNING",
        "INTAKE_SMTP_MAX_CONNECTIONS": str(clients + 5),
        # Every client is 127.0.0.1: no per-address cap, no hourly budgets.
        "INTAKE_SMTP_MAX_CONNECTIONS_PER_ADDRESS": str(clients + 5),
        "INTAKE_SMTP_MAX_MESSAGES_PER_SENDER_PER_HOUR": "0",
        "INTAKE_SMTP_MAX_MESSAGES_PER_CLIENT_PER_HOUR": "0",
        # Each client sends many mails on one session, like a relaying MTA.
        "INTAKE_SMTP_MAX_COMMANDS": str(8 * messages + 100),
    }


@contextmanager
def helper(
    command: list[str], env: dict[str, str], *, start: bool = True
) -> Iterator[Callable[[], None]]:
    """A process beside the server: started now, or when the yielded function is called."""
    processes: list[subprocess.Popen[bytes]] = []

    def begin() -> None:
        if not processes:
            processes.append(subprocess.Popen(command, env=env, cwd=ROOT))

    if start:
        begin()
    try:
        yield begin
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


# -- the yardstick: aiosmtpd and a handler that only says 250 ------------------------
class OkHandler:
    async def handle_DATA(self, _server: object, _session: object, _envelope: object) -> str:
        return "250 OK"


def run_bare_server(port: int) -> None:
    from aiosmtpd.smtp import SMTP

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = OkHandler()
        await loop.create_server(
            lambda: SMTP(handler, enable_SMTPUTF8=True, loop=loop), "127.0.0.1", port
        )
        await asyncio.Event().wait()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--runner",
        choices=("beside", "after"),
        default="beside",
        help="start the normalize-worker with the receiver (default), or after the last 250:"
        " the receiver alone on the machine's cores, as with the runners on other hosts",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.bare_server:
        run_bare_server(args.bare_server)
        return

    bare_port = free_port()
    with server(
        [sys.executable, __file__, "--bare-server", str(bare_port)], bare_port, {**os.environ}
    ):
        print(f"bare aiosmtpd: {args.messages} mails, {args.clients} clients…", file=sys.stderr)
        bare = measure(bare_port, args.messages, args.clients)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = receiver_env(folder, port, args.clients, args.messages)
        beside = args.runner == "beside"
        with (
            server([INTAKE, "smtp", "serve"], port, env),
            helper([INTAKE, "normalize-worker"], env, start=beside) as start_runner,
            helper([INTAKE, "relay"], env, start=beside) as start_relay,
        ):
            print(f"intake smtp serve: {args.messages} mails…", file=sys.stderr)
            ours = measure(port, args.messages, args.clients)
            start_runner()
            start_relay()
            settle = published_after(Path(folder) / "intake.db", args.messages + WARM_UP)
    if args.json:
        names = ("rate", "p50_ms", "p99_ms")
        figures = {"messages": args.messages, "clients": args.clients}
        figures |= {f"bare_{name}": value for name, value in zip(names, bare, strict=True)}
        figures |= {f"intake_{name}": value for name, value in zip(names, ours, strict=True)}
        figures["published_after_last_250_s"] = settle
        print(json.dumps(figures))
        return
    label = f"{args.messages} mails, {args.clients} smtplib clients"
    print(
        f"| bare aiosmtpd, handler answers 250 ({label}) | {bare[0]:,.0f} msg/s, "
        f"p50 {bare[1]:.1f} ms, p99 {bare[2]:.1f} ms |\n"
        f"| intake smtp serve, 250 after durable capture ({label}) | {ours[0]:,.0f} msg/s, "
        f"p50 {ours[1]:.1f} ms, p99 {ours[2]:.1f} ms |\n"
        f"| ratio intake / bare | {ours[0] / bare[0]:.2f}x |\n"
        f"| every complaint published (confirmed), after the last 250 | {settle:.1f} s |"
    )


if __name__ == "__main__":
    main()
