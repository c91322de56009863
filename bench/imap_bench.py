"""Benchmark: IMAP intake to RabbitMQ vs. getmail6 fetching the same Dovecot mailbox.

    .venv/bin/python bench/imap_bench.py [--messages 1000] [--repeats 3]

Per repeat, a fresh Dovecot user gets ``--messages`` distinct complaints
(French, Arabic, Darija, English, Spanish fixtures, each with its own
Message-ID), then in the same run:

1. getmail6 (``SimpleIMAPRetriever``, ``read_all``, ``delete = false``) copies
   the mailbox into a Maildir (delivered as the ``vmail`` user: getmail will
   not deliver as root). It leaves the mailbox as it was.
2. ``intake imap poll --once`` captures every mail (raw bytes, INTERNALDATE,
   one group commit per fetched batch), moves it to the processed folder,
   then normalizes the captures in process (the runner's step: evidence,
   complaint, outbox) and publishes the outbox to RabbitMQ with publisher
   confirms (a relay beside the intake, then a final drain). The clock stops
   when it has exited: every complaint committed and confirmed.

Both are timed as the subprocesses an operator runs (interpreter start-up
included). Needs root (Dovecot), dovecot-imapd, getmail6 in the venv and the
machine's RabbitMQ; every queue and exchange is declared under a private
prefix and deleted. Prints a Markdown block for docs/benchmarks.md (``--json``:
the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kombu import Connection  # noqa: E402

from config.settings import load_settings  # noqa: E402
from router.broker import topology_for  # noqa: E402
from tests.peers.dovecot import DovecotServer, ImapAccount, running_dovecot  # noqa: E402
from tests.peers.services import delete_rabbitmq_namespace  # noqa: E402

RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BIN = Path(sys.executable).parent
FIXTURES = ROOT / "tests" / "fixtures" / "mail"
# Complaints only: auto-replies and bounces would not reach the queue.
SKIP = ("autoreply", "bounce", "noreply")
ARRIVED = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


@dataclass
class Run:
    getmail: float
    ours: float


def mails(count: int) -> list[bytes]:
    templates = [
        path.read_bytes()
        for path in sorted(FIXTURES.glob("*.eml"))
        if not any(word in path.name for word in SKIP)
    ]
    made = []
    for index in range(count):
        raw = re.sub(rb"(?im)^Message-ID:.*\r?\n", b"", templates[index % len(templates)])
        raw = raw.replace(b"Subject: ", b"Subject: [%d] " % index, 1)
        made.append(b"Message-ID: <bench-%d@example.ma>\r\n" % index + raw)
    return made


def fill(server: DovecotServer, count: int) -> ImapAccount:
    account = server.add_user()
    with server.client(account) as client:
        batch = [{"msg": raw, "date": ARRIVED} for raw in mails(count)]
        for start in range(0, count, 200):
            client.multiappend("INBOX", batch[start : start + 200])
        # Let Dovecot build its index once, so neither tool pays for it.
        client.select_folder("INBOX", readonly=True)
        client.fetch(client.search("ALL"), ["RFC822.SIZE"])
    return account


def time_getmail(account: ImapAccount, folder: Path, count: int) -> float:
    maildir = folder / "Maildir"
    for part in ("cur", "new", "tmp"):
        (maildir / part).mkdir(parents=True)
    subprocess.run(["chown", "-R", "vmail:", str(folder)], check=True)
    (folder / "getmailrc").write_text(
        "[retriever]\ntype = SimpleIMAPRetriever\n"
        f"server = {account.host}\nport = {account.port}\n"
        f"username = {account.user}\npassword = {account.password}\n"
        'mailboxes = ("INBOX",)\n'
        f"[destination]\ntype = Maildir\npath = {maildir}/\nuser = vmail\n"
        "[options]\nread_all = true\ndelete = false\nverbose = 0\n"
    )
    command = [str(BIN / "getmail"), "--rcfile", str(folder / "getmailrc")]
    start = time.perf_counter()
    subprocess.run([*command, "--getmaildir", str(folder)], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    delivered = len(list((maildir / "new").iterdir()))
    assert delivered == count, f"getmail delivered {delivered} of {count}"
    return elapsed


def intake(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "intake"), *args], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, f"intake {' '.join(args)}: {done.stderr[-2000:]}"
    return elapsed, done.stderr


def queued(prefix: str, data_dir: Path) -> int:
    settings = load_settings(data_dir=data_dir, broker_url=RABBITMQ, topology_prefix=prefix)
    with Connection(RABBITMQ, connect_timeout=5) as connection:
        queue = topology_for(settings).inbound.name
        return int(connection.channel().queue_declare(queue, passive=True).message_count)


def time_intake(account: ImapAccount, folder: Path, count: int) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update(
        INTAKE_DATA_DIR=str(folder / "var"),
        INTAKE_LOG_LEVEL="WARNING",
        INTAKE_BROKER_URL=RABBITMQ,
        INTAKE_TOPOLOGY_PREFIX=prefix,
        INTAKE_IMAP_HOST=account.host,
        INTAKE_IMAP_PORT=str(account.port),
        INTAKE_IMAP_USER=account.user,
        INTAKE_IMAP_PASSWORD=account.password,
        INTAKE_IMAP_TLS="off",
        INTAKE_IMAP_BATCH_SIZE="100",
    )
    try:
        ours, said = intake(env, "imap", "poll", "--once")
        assert f"{count} captured (0 already captured)" in said, said
        assert f"{count} normalized, 0 quarantined" in said, said
        depth = queued(prefix, folder / "var")
        assert depth == count, f"{depth} of {count} messages on RabbitMQ"
    finally:
        delete_rabbitmq_namespace(prefix)
    return ours


def one_run(server: DovecotServer, count: int) -> Run:
    account = fill(server, count)
    with tempfile.TemporaryDirectory(prefix="imap-bench-") as folder:
        # getmail's delivery child runs as vmail: it must reach the Maildir.
        Path(folder).chmod(0o755)
        getmail = time_getmail(account, Path(folder) / "getmail", count)
        ours = time_intake(account, Path(folder), count)
    moved = server.count(account, "Processed")
    assert moved == count, f"{moved} of {count} mails in the processed folder"
    return Run(getmail, ours)


def report(runs: list[Run], count: int) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    getmail = median([run.getmail for run in runs])
    ours = median([run.ours for run in runs])
    each = ", ".join(f"{run.ours:.2f} vs {run.getmail:.2f}" for run in runs)
    return "\n".join(
        [
            f"{count} mails, median of {len(runs)} runs (ours vs getmail6 per run: {each} s)",
            "",
            "| what | seconds | mails/s |",
            "|---|---|---|",
            f"| getmail6 6.x: IMAP -> Maildir (fsync, one fork per mail) | {getmail:.2f} "
            f"| {count / getmail:.0f} |",
            f"| **`intake imap poll --once`: captured, moved, normalized, confirmed on RabbitMQ** "
            f"| **{ours:.2f}** "
            f"| {count / ours:.0f} |",
            f"| **ours / getmail6** (goal <= 0.33) | **{ours / getmail:.2f}** | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    runs = []
    with running_dovecot() as server:
        for repeat in range(args.repeats):
            print(f"run {repeat + 1}/{args.repeats}: {args.messages} mails…", file=sys.stderr)
            runs.append(one_run(server, args.messages))
    if args.json:
        median = statistics.median
        figures = {
            "messages": args.messages,
            "repeats": args.repeats,
            "getmail_s": median([run.getmail for run in runs]),
            "ours_s": median([run.ours for run in runs]),
            "runs": [[run.ours, run.getmail] for run in runs],
        }
        print(json.dumps(figures))
        return
    print("```")
    print(report(runs, args.messages))
    print("```")


if __name__ == "__main__":
    main()
