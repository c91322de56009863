"""Soak: mixed load on one ``intake run`` for a long time; throughput and memory over time.

    .venv/bin/python bench/soak.py --minutes 30            # embedded defaults
    .venv/bin/python bench/soak.py --minutes 30 --production   # this machine's servers
    .venv/bin/python bench/soak.py --minutes 30 \\
        --postgres postgresql://postgres@127.0.0.1:5432/postgres \\
        --rabbitmq amqp://guest:guest@127.0.0.1:5672//     # the same, servers named
    .venv/bin/python bench/soak.py --redraw /tmp/soak-XXXX.json   # a saved run, drawn again

One gateway process (``intake run``: web, relay, SMTP receiver, OCR and
phone workers in one) gets, at fixed rates and in parallel: e-mails over
SMTP, signed Twilio SMS webhooks, web-form posts, and postal letters
through ``POST /v1/letters`` (born-digital PDFs, and every tenth one a
rendered scan that goes through tesseract). A consumer in this process
drains ``complaints.inbound`` the whole time. Every ``--sample`` seconds it
records the answers per kind, the complaints stored, published and
consumed, the request latency, and the resident memory (RSS) of the gateway
and of its children (OCR jobs).

At the end: ``docs/soak.png`` (throughput, memory and latency over time) and
the soak's figures under ``soak`` in ``docs/benchmarks.json``, from which
``docs/benchmarks.md`` is rendered again (``bench/suite.py``). Needs nothing
but this machine (tesseract for the scans). ``--production`` (or both
``--postgres`` and ``--rabbitmq``) puts the store and the queue on
PostgreSQL and RabbitMQ, the configuration Cash Plus runs: a fresh database
and a private topology prefix, both removed at the end, and the figures
recorded apart, under ``soak_production`` with ``docs/soak-production.png``,
so that neither run overwrites the other. A run with only one of the two
servers matches neither record and is only printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from bench.databases import postgres_database  # noqa: E402
from bench.soak_load import (  # noqa: E402
    ACCOUNT,
    KINDS,
    PUBLIC,
    TOKEN,
    Consumer,
    Gateway,
    Tally,
    drive,
    free_port,
    rss_mb,
    store_counts,
)
from bench.soak_plot import plot  # noqa: E402

INTAKE = str(Path(sys.executable).with_name("intake"))
# The servers ``--production`` means: this machine's, as the tests use them.
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
# Where each configuration's figures and picture are kept (key in docs/benchmarks.json).
RECORDS = {
    ("SQLite", "filesystem"): ("soak", ROOT / "docs" / "soak.png"),
    ("PostgreSQL", "RabbitMQ"): ("soak_production", ROOT / "docs" / "soak-production.png"),
}


@contextmanager
def gateway(folder: Path, database_url: str, broker_url: str) -> Iterator[Gateway]:
    port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(
        INTAKE_DATA_DIR=str(folder),
        INTAKE_DATABASE_URL=database_url,
        INTAKE_BROKER_URL=broker_url,
        INTAKE_TOPOLOGY_PREFIX=f"soak-{uuid.uuid4().hex[:8]}." if broker_url else "",
        INTAKE_HTTP_PORT=str(port),
        INTAKE_SMTP_PORT=str(smtp_port),
        # Every mail comes from 127.0.0.1 on long sessions: no hourly budgets, no
        # per-address cap, no command budget worth hitting.
        INTAKE_SMTP_MAX_MESSAGES_PER_CLIENT_PER_HOUR="0",
        INTAKE_SMTP_MAX_MESSAGES_PER_SENDER_PER_HOUR="0",
        INTAKE_SMTP_MAX_CONNECTIONS_PER_ADDRESS="50",
        INTAKE_SMTP_MAX_COMMANDS="1000000",
        INTAKE_LOG_LEVEL="WARNING",
        INTAKE_PUBLIC_BASE_URL=PUBLIC,
        INTAKE_WEBFORM_MAX_PER_HOUR="1000000000",
        INTAKE_OCR_WORKERS="1",
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT,
    )
    created = subprocess.run(
        [INTAKE, "api-key", "create", "soak"], env=env, capture_output=True, text=True, check=True
    )
    log = (folder / "gateway.log").open("wb")
    process = subprocess.Popen([INTAKE, "run"], env=env, stderr=log, stdout=log, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"intake run did not start; see {folder / 'gateway.log'}")
            time.sleep(0.2)
        database = database_url or str(folder / "intake.db")
        yield Gateway(process, base, smtp_port, created.stdout.strip(), database, env)
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if broker_url:
            from tests.peers.rabbitmq_node import delete_namespace

            delete_namespace(broker_url, env["INTAKE_TOPOLOGY_PREFIX"])


# -- sampling, and the whole run ---------------------------------------------------------
def sample(
    started: float, gateway: Gateway, tallies: dict[str, Tally], consumer: Consumer
) -> dict[str, Any]:
    stored, published = store_counts(gateway.database)
    latencies = [s for tally in tallies.values() for s in tally.take_latencies()]
    own, children = rss_mb(gateway.process.pid)
    return {
        "t": round(time.monotonic() - started, 1),
        "answered": {kind: tally.ok for kind, tally in tallies.items()},
        "failed": {kind: tally.failed for kind, tally in tallies.items()},
        "stored": sum(stored.values()),
        "published": published,
        "consumed": consumer.count,
        "rss_mb": round(own, 1),
        "children_rss_mb": round(children, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(_p99(latencies) * 1000, 1) if latencies else None,
        "load": os.getloadavg()[0],
    }


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100)[98]


def run(args: argparse.Namespace, folder: Path, database_url: str) -> dict[str, Any]:
    rates = {"email": args.email_rate, "sms": args.sms_rate, "webform": args.form_rate}
    rates["letter"] = args.letter_rate
    tallies = {kind: Tally() for kind in KINDS}
    samples: list[dict[str, Any]] = []
    with gateway(folder, database_url, args.rabbitmq or "") as gw:
        consumer = Consumer(gw.env)
        consumer.thread.start()
        stop = threading.Event()
        workers = [
            worker
            for kind in KINDS
            for worker in drive(kind, gw, rates[kind], tallies[kind], stop, args.threads)
        ]
        started = time.monotonic()
        end = started + args.minutes * 60
        while time.monotonic() < end and gw.process.poll() is None:
            time.sleep(min(args.sample, max(0.0, end - time.monotonic())))
            samples.append(sample(started, gw, tallies, consumer))
            print(json.dumps(samples[-1]), file=sys.stderr)
        stop.set()
        for worker in workers:
            worker.join(120)
        drained = drain(gw, consumer, tallies)
        consumer.stop.set()
        consumer.thread.join(10)
        crashed = gw.process.poll()
    return summarize(args, rates, tallies, samples, drained, crashed)


def drain(gateway: Gateway, consumer: Consumer, tallies: dict[str, Tally]) -> dict[str, int]:
    """Wait (at most 5 minutes) for the backlog: OCR, relay, consumer."""
    accepted = sum(tally.ok for tally in tallies.values())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stored, published = store_counts(gateway.database)
        if published >= sum(stored.values()) >= accepted and consumer.count >= published:
            break
        time.sleep(2)
    stored, published = store_counts(gateway.database)
    return {
        "stored": sum(stored.values()),
        "published": published,
        "consumed": consumer.count,
        "duplicated": consumer.deliveries - consumer.count,
    }


def summarize(
    args: argparse.Namespace,
    rates: dict[str, float],
    tallies: dict[str, Tally],
    samples: list[dict[str, Any]],
    drained: dict[str, int],
    crashed: int | None,
) -> dict[str, Any]:
    seconds = samples[-1]["t"] if samples else 0.0
    warm = [s for s in samples if s["t"] >= min(120.0, seconds / 4)] or samples
    accepted = sum(t.ok for t in tallies.values())
    loads = [s["load"] for s in samples]
    return {
        "minutes": args.minutes,
        "store": "PostgreSQL" if args.postgres else "SQLite",
        "broker": "RabbitMQ" if args.rabbitmq else "filesystem",
        "rates": rates,
        "answered": {kind: tally.ok for kind, tally in tallies.items()},
        "failed": {kind: tally.failed for kind, tally in tallies.items()},
        "accepted": accepted,
        "throughput": round(accepted / seconds, 2) if seconds else 0.0,
        **drained,
        "lost": max(0, accepted - drained["consumed"]),
        "rss_start_mb": warm[0]["rss_mb"] if warm else None,
        "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
        "rss_max_mb": max((s["rss_mb"] for s in samples), default=None),
        "p99_max_ms": max((s["p99_ms"] or 0 for s in samples), default=None),
        "p99_median_ms": statistics.median([s["p99_ms"] or 0 for s in samples])
        if samples
        else None,
        "rss_trend_mb_per_hour": rss_trend(warm),
        "load_mean": round(statistics.fmean(loads), 2) if loads else None,
        "load_max": round(max(loads), 2) if loads else None,
        "gateway_exit": crashed,
        "samples": samples,
    }


def rss_trend(samples: list[dict[str, Any]]) -> float | None:
    """Least-squares slope of the gateway's RSS after warm-up, in MB per hour.

    The start and end figures alone tell a step from a leak badly; the slope
    over every sample says how fast memory would grow over a day.
    """
    if len(samples) < 3:
        return None
    hours = [s["t"] / 3600 for s in samples]
    fit = statistics.linear_regression(hours, [s["rss_mb"] for s in samples])
    return round(fit.slope, 1)


def record(result: dict[str, Any]) -> tuple[str, Path] | None:
    """The key and picture this run's configuration is recorded under (None: not recorded)."""
    return RECORDS.get((result["store"], result["broker"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--email-rate", type=float, default=3.0, help="mails/s over SMTP")
    parser.add_argument("--sms-rate", type=float, default=3.0, help="Twilio webhooks/s")
    parser.add_argument("--form-rate", type=float, default=1.0, help="web form posts/s")
    parser.add_argument("--letter-rate", type=float, default=0.2, help="letters/s")
    parser.add_argument("--threads", type=int, default=2, help="sender threads per kind")
    parser.add_argument("--postgres", metavar="ADMIN_URL")
    parser.add_argument("--rabbitmq", metavar="AMQP_URL")
    parser.add_argument(
        "--production",
        action="store_true",
        help=f"PostgreSQL and RabbitMQ (default {POSTGRES} and {RABBITMQ}); "
        "recorded as soak_production",
    )
    parser.add_argument(
        "--png", type=Path, help="the picture (default docs/soak.png or docs/soak-production.png)"
    )
    parser.add_argument("--no-docs", action="store_true", help="print the figures only")
    parser.add_argument(
        "--redraw", type=Path, metavar="FIGURES.json", help="draw a saved run again, run nothing"
    )
    args = parser.parse_args()
    if args.production:
        args.postgres = args.postgres or POSTGRES
        args.rabbitmq = args.rabbitmq or RABBITMQ
    if args.redraw:
        result = json.loads(args.redraw.read_text(encoding="utf-8"))
    else:
        began, load = time.monotonic(), round(os.getloadavg()[0], 2)
        with (
            tempfile.TemporaryDirectory(prefix="soak-") as name,
            postgres_database(args.postgres, "intake_soak") as url,
        ):
            result = run(args, Path(name), url)
        result["date"] = machine.today()
        result["command"] = ".venv/bin/python bench/soak.py " + " ".join(sys.argv[1:])
        result["load"], result["seconds"] = load, round(time.monotonic() - began, 1)
        # Kept whatever happens next: half an hour of figures is not lost to a plotting error.
        backup = Path(tempfile.gettempdir()) / f"soak-{uuid.uuid4().hex[:6]}.json"
        backup.write_text(json.dumps(result), encoding="utf-8")
        print(f"figures saved in {backup} (--redraw it)", file=sys.stderr)
    kept = record(result)
    # Only a recorded run draws over the picture in docs/.
    drawn = kept[1] if kept and not args.no_docs else Path(tempfile.gettempdir()) / "soak.png"
    png = args.png or drawn
    plot(result, png)
    print(f"plot drawn in {png}", file=sys.stderr)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if not args.no_docs:
        if kept is None:
            raise SystemExit(f"{result['store']} + {result['broker']} is not a recorded soak")
        from bench import suite

        suite.store_result(kept[0], result)
        suite.write_document()
    # Recorded either way; the exit status says whether the soak kept its promise.
    if result["lost"] or result["gateway_exit"] is not None:
        raise SystemExit(f"lost {result['lost']}, gateway exit {result['gateway_exit']}")


if __name__ == "__main__":
    main()
