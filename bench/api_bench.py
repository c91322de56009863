"""Benchmark: POST /v1/complaints (201 after the durable capture) vs. a bare FastAPI endpoint.

    .venv/bin/python bench/api_bench.py [--posts 2000] [--concurrency 20]

Both servers run as their own uvicorn process on this machine, in the same
run: the bare one is a FastAPI app whose endpoint returns ``201`` with a body
of the same shape and does nothing else; ours is ``intake web`` on an
embedded store (SQLite WAL, synchronous=FULL, fsynced blobs) with ``intake
normalize-worker`` beside it, as the Procfile runs them. The same client
posts to both, ``--concurrency`` requests in flight, distinct bodies: httpx
(``--posts`` requests), or with ``--client wrk`` the C load generator
(Debian's ``wrk``, a Lua script making each body and Idempotency-Key
distinct) for ``--seconds``, so that the p99 is the server's and not a Python
client's saturating first. After the last ``201`` the run waits until every
capture is a complaint and reports how long that took. Prints a Markdown
block (``--json``: the figures).
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
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay_bench import free_port, post_all

INTAKE = str(Path(sys.executable).with_name("intake"))


def run_bare_server(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/complaints")
    async def create() -> JSONResponse:
        body = {
            "id": "00000000-0000-0000-0000-000000000000",
            "reference": "CP-2345-6789",
            "received_at": "2026-12-06T10:00:00+01:00",
            "ack_due_at": "2026-12-16T23:59:59+01:00",
            "answer_due_at": "2027-01-15T23:59:59+01:00",
            "status_url": "http://127.0.0.1/v1/complaints/CP-2345-6789",
        }
        return JSONResponse(body, status_code=201, headers={"Location": body["status_url"]})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_for(base: str, process: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(f"{base}{path}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answers at {base}")


def measure(base: str, key: str, posts: int, concurrency: int) -> tuple[float, float, float]:
    for _ in range(20):  # warm-up (posts would repeat the measured bodies: 200, not 201)
        httpx.get(f"{base}/healthz", timeout=5)
    start = time.perf_counter()
    latencies = asyncio.run(post_all(base, key, posts, concurrency))
    elapsed = time.perf_counter() - start
    quantiles = statistics.quantiles(latencies, n=100)
    return posts / elapsed, quantiles[49] * 1000, quantiles[98] * 1000


# Each request a new complaint: its own body and Idempotency-Key (one wrk thread).
WRK_SCRIPT = """
math.randomseed(os.time())
local run = tostring(math.random(1, 1000000000))
local count = 0
function request()
  count = count + 1
  local id = run .. "-" .. count
  local body = '{"body": "Reclamation ' .. id .. ': carte bloquee au guichet.", '
    .. '"customer": {"name": "Bench", "phone": "0661234567"}}'
  return wrk.format("POST", "/v1/complaints", {
    ["Authorization"] = "Bearer KEY",
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = id}, body)
end
"""


def measure_wrk(base: str, key: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk; exits if any answer was not a 2xx."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "posts.lua"
        script.write_text(WRK_SCRIPT.replace("KEY", key), encoding="utf-8")
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s"]
        output = subprocess.run(
            [*command, str(script), base], capture_output=True, text=True, check=True
        ).stdout
    if "Non-2xx or 3xx responses" in output:
        raise SystemExit(f"some answers were not 201:\n{output}")
    rate = float(_found(r"Requests/sec:\s+([\d.]+)", output))
    return rate, _wrk_ms(output, "50%"), _wrk_ms(output, "99%")


def _found(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    if match is None:
        raise SystemExit(f"wrk printed no {pattern!r}:\n{output}")
    return match.group(1)


def _wrk_ms(output: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    if match is None:
        raise SystemExit(f"wrk printed no {percentile} latency:\n{output}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def posts_in(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        (count,) = connection.execute("SELECT count(*) FROM intake").fetchone()
    return int(count)


def normalized_after(database: Path, expected: int, timeout: float = 300.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
            (done,) = connection.execute("SELECT count(*) FROM complaints").fetchone()
        if done >= expected:
            return time.perf_counter() - start
        time.sleep(0.1)
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--client", choices=("httpx", "wrk"), default="httpx")
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk posts")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.bare_server:
        run_bare_server(args.bare_server)
        return
    if args.client == "wrk" and shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    def load(base: str, key: str) -> tuple[float, float, float]:
        if args.client == "wrk":
            return measure_wrk(base, key, args.seconds, args.concurrency)
        return measure(base, key, args.posts, args.concurrency)

    port = free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base, bare, "/docs")
        print(f"bare FastAPI ({args.client})…", file=sys.stderr)
        bare_figures = load(base, "none")
    finally:
        bare.terminate()
        bare.wait(30)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {
            **os.environ,
            "INTAKE_DATA_DIR": folder,
            "INTAKE_HTTP_PORT": str(port),
            "INTAKE_LOG_LEVEL": "WARNING",
        }
        key = subprocess.run(
            [INTAKE, "api-key", "create", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        web = subprocess.Popen([INTAKE, "web"], env=env)
        runner = subprocess.Popen([INTAKE, "normalize-worker"], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base, web, "/healthz")
            print(f"intake web ({args.client})…", file=sys.stderr)
            ours = load(base, key)
            posted = posts_in(Path(folder) / "intake.db")
            settle = normalized_after(Path(folder) / "intake.db", posted)
        finally:
            for process in (web, runner):
                process.terminate()
                process.wait(30)
    names = ("rate", "p50_ms", "p99_ms")
    figures: dict[str, object] = {"posts": posted, "concurrency": args.concurrency}
    figures |= {f"bare_{name}": value for name, value in zip(names, bare_figures, strict=True)}
    figures |= {f"intake_{name}": value for name, value in zip(names, ours, strict=True)}
    figures["normalized_after_last_201_s"] = settle
    if args.json:
        print(json.dumps(figures))
        return
    client = f"wrk {args.seconds} s" if args.client == "wrk" else f"httpx, {posted} POSTs"
    label = f"{client}, concurrency {args.concurrency}"
    print(
        f"| bare FastAPI endpoint answering 201 ({label}) | {bare_figures[0]:,.0f} req/s, "
        f"p50 {bare_figures[1]:.1f} ms, p99 {bare_figures[2]:.1f} ms |\n"
        f"| intake web, 201 after durable capture ({label}) | {ours[0]:,.0f} req/s, "
        f"p50 {ours[1]:.1f} ms, p99 {ours[2]:.1f} ms |\n"
        f"| ratio intake / bare | {ours[0] / bare_figures[0]:.2f}x |\n"
        f"| every capture a complaint, after the last 201 | {settle:.1f} s |"
    )


if __name__ == "__main__":
    main()
