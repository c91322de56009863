"""Benchmark: a normalizer runner, plain e-mails from captured to outbox, per process.

    .venv/bin/python bench/runner_bench.py [--messages 3000] [--batch 100] [--database URL]

Captures ``--messages`` distinct plain complaint mails (as the SMTP edge
does, in process), then times one ``NormalizeRunner`` claiming, parsing,
normalizing and committing them (complaint, evidence, outbox rows, one commit
per batch) until none is left. The yardstick in the same run is the parse
alone (``normalizer.email.parse_email`` of the same mails, no store): the
ratio says how much of the runner's time is the store's. Embedded SQLite by
default; ``--database`` for PostgreSQL (``--processes 2`` then runs two
runner processes on the same backlog).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENVELOPE = {"smtp_peer": "127.0.0.1", "mail_from": "client@example.ma", "rcpt_to": ["c@x"]}


def mail(index: int) -> bytes:
    return (
        f"From: Client {index} <client{index % 500}@example.ma>\r\n"
        "To: Cash Plus <contact@cashplus.ma>\r\n"
        f"Subject: Transfert {index} non reçu\r\n"
        "Date: Mon, 03 Jun 2024 10:15:00 +0100\r\n"
        f"Message-ID: <runner-{index}-{time.time_ns()}@example.ma>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Bonjour,\r\n\r\nJ'ai envoyé {100 + index} DH à mon frère à Agadir, il n'a "
        "toujours rien reçu. Pouvez-vous vérifier ?\r\n\r\nMerci.\r\n"
    ).encode()


def settings_for(folder: str, database: str | None, batch: int) -> object:
    from config.settings import load_settings

    values: dict[str, object] = {
        "data_dir": Path(folder),
        "normalize_batch_size": batch,
        "log_level": "WARNING",
    }
    if database:
        values["database_url"] = database
    return load_settings(**values)


def drain(args: tuple[str, str | None, int]) -> int:
    """One runner process: batches until nothing is left; how many it finished."""
    from gateway.lib.normalize_runner import NormalizeRunner
    from gateway.lib.services import build_services
    from gateway.runner import capture_normalizers

    folder, database, batch = args
    services = build_services(settings_for(folder, database, batch))  # type: ignore[arg-type]
    try:
        runner = NormalizeRunner(services, capture_normalizers())
        while runner.run_once():
            pass
        return runner.stats.finished + runner.stats.quarantined
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--database", help="a PostgreSQL URL (default: embedded SQLite)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from channels.email.intake import email_limits
    from channels.email.staged import capture_mail
    from gateway.lib.services import build_services
    from normalizer.email import parse_email

    mails = [mail(index) for index in range(args.messages)]
    with tempfile.TemporaryDirectory() as folder:
        services = build_services(settings_for(folder, args.database, args.batch))  # type: ignore[arg-type]
        try:
            limits = email_limits(services.settings)
            start = time.perf_counter()
            for raw in mails:
                parse_email(raw, limits)
            parse_rate = args.messages / (time.perf_counter() - start)
            print(f"capturing {args.messages} mails…", file=sys.stderr)
            received = datetime.now(UTC)
            for raw in mails:
                capture_mail(services, raw, received, dict(ENVELOPE))
        finally:
            services.close()
        print(f"normalizing with {args.processes} runner process(es)…", file=sys.stderr)
        start = time.perf_counter()
        jobs = [(folder, args.database, args.batch)] * args.processes
        if args.processes == 1:
            finished = [drain(jobs[0])]
        else:
            with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
                finished = pool.map(drain, jobs)
        elapsed = time.perf_counter() - start
    rate = sum(finished) / elapsed
    figures = {
        "messages": args.messages,
        "batch": args.batch,
        "processes": args.processes,
        "database": "postgresql" if args.database else "sqlite",
        "runner_rate": rate,
        "parse_only_rate": parse_rate,
        "finished": sum(finished),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"| runner, {figures['database']}, {args.processes} process(es), batch {args.batch} "
        f"({args.messages} plain mails) | {rate:,.0f} mails/s captured -> outbox |\n"
        f"| yardstick: parse alone, same mails, no store | {parse_rate:,.0f} mails/s |\n"
        f"| ratio runner / parse alone | {rate / parse_rate:.2f}x |"
    )


if __name__ == "__main__":
    main()
