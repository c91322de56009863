"""Benchmark: signed Twilio webhooks through the full stack vs. a bare endpoint.

    .venv/bin/python bench/twilio_bench.py [--seconds 10] [--connections 16] [--rate 100]

Two servers, started the same way (uvicorn, one process, no access log):

- full stack: ``intake web`` (SQLite with synchronous=FULL, blob store on
  disk); each request is an inbound SMS with a fresh MessageSid, signed as
  Twilio signs it: signature check, the reply's language told from the text,
  the capture (the form body in its ``intake`` row) group-committed, TwiML
  reply with the reference (no runner is started: what it costs is the
  runner benchmark's);
- yardstick: a bare FastAPI endpoint of the same framework that returns the
  same TwiML without doing anything.

Load, the same tool for both: ``wrk`` (Debian) at full speed, each request a
distinct pre-signed webhook read by a Lua script; then an open-loop httpx
client at a fixed rate (latency counted from the scheduled send time, so a
slow server cannot hide its queueing). Prints a Markdown block for
docs/benchmarks.md (``--json``: the figures). Needs ``wrk`` (apt-get install wrk)
and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.databases import postgres_database  # noqa: E402

TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "b" * 32
PUBLIC = "https://intake.cashplus.example"
PATH = "/twilio/messaging"
REPLY = (
    "Cash Plus : votre réclamation est enregistrée sous la référence CP-7K4M-9QXT. "
    "Nous en accusons réception sous 10 jours et vous répondons sous 40 jours au plus."
)
TEXTS = [
    "Bonjour, mon transfert de {n} DH n'est pas arrivé depuis trois jours.",
    "salam, la carte dyali tblokat f guichet nhar {n}, 3afak",
    "Le guichet a gardé ma carte, opération numéro {n}.",
]
WRK_SCRIPT = """
local requests = {}
local index = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
counter = 0
function init(args)
  local n = 0
  for line in io.lines(args[1]) do
    if n % tonumber(args[2]) == id then
      local tab = line:find("\\t")
      requests[#requests + 1] = {line:sub(1, tab - 1), line:sub(tab + 1)}
    end
    n = n + 1
  end
end
function request()
  index = index % #requests + 1
  local item = requests[index]
  return wrk.format("POST", "%s", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = item[1]}, item[2])
end
"""


def bare_app() -> FastAPI:
    app = FastAPI()
    reply = MessagingResponse()
    reply.message(REPLY)
    document = reply.to_xml()

    @app.post(PATH)
    async def messaging(request: Request) -> Response:
        await request.body()
        return Response(content=document, media_type="application/xml")

    return app


def signed_requests(count: int) -> list[tuple[str, str]]:
    validator = RequestValidator(TOKEN)
    items = []
    for index in range(count):
        params = {
            "AccountSid": ACCOUNT,
            "MessageSid": "SM" + uuid.uuid4().hex,
            "From": f"+2126612{index % 100000:05d}",
            "To": "+212520020915",
            "Body": TEXTS[index % len(TEXTS)].format(n=index),
            "NumMedia": "0",
            "NumSegments": "1",
        }
        signature = validator.compute_signature(PUBLIC + PATH, params)
        items.append((signature, urlencode(params)))
    return items


@contextmanager
def server(kind: str, folder: Path, database_url: str = "", processes: int = 1) -> Iterator[str]:
    """``processes`` > 1: that many ``intake web`` sharing the port (full stack only)."""
    port = free_port()
    env = {
        **os.environ,
        "INTAKE_DATA_DIR": str(folder),
        "INTAKE_DATABASE_URL": database_url,
        "INTAKE_HTTP_PORT": str(port),
        "INTAKE_LOG_LEVEL": "WARNING",
        "INTAKE_PUBLIC_BASE_URL": PUBLIC,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
    }
    python = Path(sys.executable)
    command = (
        [str(python.with_name("intake")), "web"]
        if kind == "full"
        else [str(python), __file__, "--serve-bare", str(port)]
    )
    started = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(processes)]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.post(base + PATH, timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in started):
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.2)
        time.sleep(2.0 if processes > 1 else 0.0)  # every process listening, not only the first
        yield base
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_wrk(
    base: str, requests: list[tuple[str, str]], seconds: int, connections: int, folder: Path
) -> dict[str, float]:
    data = folder / f"requests-{uuid.uuid4().hex[:6]}.tsv"
    data.write_text("".join(f"{sig}\t{body}\n" for sig, body in requests), encoding="utf-8")
    script = folder / "signed.lua"
    script.write_text(WRK_SCRIPT.replace('"%s"', f'"{PATH}"'), encoding="utf-8")
    threads = 1
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            base + PATH,
            "--",
            str(data),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rate": rate,
        "total": total,
        "p50": _wrk_ms(output, "50%"),
        "p99": _wrk_ms(output, "99%"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _wrk_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def open_loop(base: str, requests: list[tuple[str, str]], rate: float) -> list[float]:
    """Send ``requests`` at ``rate``/s on schedule; latency from the scheduled time (ms)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.perf_counter()

        async def one(index: int, signature: str, body: str) -> None:
            due = start + index / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            }
            try:
                response = await client.post(base + PATH, content=body, headers=headers)
            except httpx.TransportError:
                # A keep-alive connection the server closed as we reused it:
                # send again (same MessageSid, so still one complaint), as Twilio would.
                response = await client.post(base + PATH, content=body, headers=headers)
            latencies.append((time.perf_counter() - due) * 1000)
            assert response.status_code == 200, response.text

        await asyncio.gather(*(one(i, sig, body) for i, (sig, body) in enumerate(requests)))
    return latencies


def captures_in(folder: Path, database_url: str) -> int:
    """Inputs the webhook made durable (the runners, not started here, make the complaints)."""
    query = "SELECT count(*) FROM intake"
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as connection:
            return int(connection.execute(query).fetchone()[0])  # type: ignore[index]
    with sqlite3.connect(folder / "intake.db") as connection:
        return int(connection.execute(query).fetchone()[0])


def measure(
    kind: str, args: argparse.Namespace, folder: Path, database_url: str = ""
) -> dict[str, float]:
    data = folder / kind
    data.mkdir()
    pool = signed_requests(args.pool)
    warm, rest = pool[:200], pool[200:]
    steady = rest[: int(args.rate * args.rate_seconds)]
    loaded = rest[len(steady) :]
    with server(kind, data, database_url) as base:
        asyncio.run(open_loop(base, warm, 200))
        latencies = asyncio.run(open_loop(base, steady, args.rate))
        result = run_wrk(base, loaded, args.seconds, args.connections, folder)
    cuts = statistics.quantiles(latencies, n=100)
    result.update(rate_p50=cuts[49], rate_p99=cuts[98])
    if kind == "full":
        result["captured"] = captures_in(data, database_url)
        result["sent"] = len(warm) + len(steady) + min(int(result["total"]), len(loaded))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--pool", type=int, default=60_000, help="distinct signed requests")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="store on PostgreSQL (a fresh database there) instead of SQLite, "
        "e.g. postgresql://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also measure this many `intake web` processes sharing the port (1: skip)",
    )
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn

        uvicorn.run(
            bare_app(),
            host="127.0.0.1",
            port=args.serve_bare,
            log_level="warning",
            access_log=False,
        )
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with postgres_database(args.postgres) as database_url:
            full = measure("full", args, folder, database_url)
        bare = measure("bare", args, folder)
        spread = None
        if args.processes > 1:
            # The same stack as several processes on one port, at max rate only.
            data = folder / "spread"
            data.mkdir()
            with (
                postgres_database(args.postgres) as database_url,
                server("full", data, database_url, args.processes) as base,
            ):
                requests = signed_requests(args.pool)
                spread = run_wrk(base, requests, args.seconds, args.connections, folder)
                spread["processes"] = args.processes
    if args.json:
        settings = {"seconds": args.seconds, "connections": args.connections, "rate": args.rate}
        settings |= {"spread": spread} if spread else {}
        settings |= {"rate_seconds": args.rate_seconds, "store": args.postgres and "PostgreSQL"}
        print(json.dumps({"full": full, "bare": bare, **settings}))
        return
    report(full, bare, spread, args)


def report(
    full: dict[str, float],
    bare: dict[str, float],
    spread: dict[str, float] | None,
    args: argparse.Namespace,
) -> None:
    load = f"wrk, {args.connections} connections, {args.seconds} s"
    store = "PostgreSQL" if args.postgres else "SQLite"
    steady = f"open loop at {args.rate:.0f} req/s, {args.rate_seconds:.0f} s"
    rows = [
        (
            f"full stack ({store}), max rate ({load})",
            f"{full['rate']:,.0f} req/s",
            f"p50 {full['p50']:.1f} ms, p99 {full['p99']:.1f} ms",
        ),
        (
            f"bare endpoint, max rate ({load})",
            f"{bare['rate']:,.0f} req/s",
            f"p50 {bare['p50']:.1f} ms, p99 {bare['p99']:.1f} ms",
        ),
        ("**ratio full / bare** (goal ≥ 0.5×)", f"**{full['rate'] / bare['rate']:.2f}×**", ""),
        (
            f"full stack ({store}), {steady}",
            "",
            f"p50 {full['rate_p50']:.1f} ms, **p99 {full['rate_p99']:.1f} ms** (goal < 50 ms)",
        ),
        (
            f"bare endpoint, {steady}",
            "",
            f"p50 {bare['rate_p50']:.1f} ms, p99 {bare['rate_p99']:.1f} ms",
        ),
    ]
    if spread:
        rows.insert(
            3,
            (
                f"full stack, {spread['processes']:.0f} web processes on one port ({load})",
                f"{spread['rate']:,.0f} req/s",
                f"p50 {spread['p50']:.1f} ms, p99 {spread['p99']:.1f} ms",
            ),
        )
    print("| what | rate | latency |\n|---|---|---|")
    print("\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows))
    print(
        f"\nfull stack: {full['captured']:.0f} messages captured for {full['sent']:.0f} "
        f"requests sent; non-2xx answers: full {full['errors']:.0f}, bare {bare['errors']:.0f}"
    )


if __name__ == "__main__":
    main()
