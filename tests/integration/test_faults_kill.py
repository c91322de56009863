"""The gateway killed with SIGKILL at random moments under SMTP, IMAP and API load.

One ``intake run`` process (web, relay, SMTP receiver, IMAP poller) takes
mail over SMTP, polls a Dovecot mailbox and answers the partner API, all at
once, publishing to a private RabbitMQ node. It is killed with SIGKILL at a
random moment, restarted on the same ports and data, several times; the
clients behave as real ones do (an MTA retries what got no 250, an API
client retries what got no 2xx, the mailbox keeps what was not moved).

The promise under test: every input that got a positive answer (SMTP 250,
HTTP 2xx, moved to the IMAP processed folder) is on the queue, and no input
became two complaints. The seed of the random kill times is printed.
"""

from __future__ import annotations

import email
import random
import signal
import smtplib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from config.settings import Settings, load_settings
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.faults import LONG, Gateway, read_queue, sqlite_counts, start_gateway, tally
from tests.peers.imap import captures_waiting, complaint_mail
from tests.peers.processes import IntakeProcesses, free_port, wait_for_port, wait_until
from tests.peers.rabbitmq_node import (  # noqa: F401 (fixtures)
    RabbitNode,
    broker_fixture,
    delete_namespace,
    rabbitmq_node_fixture,
)

KILLS = 10 if LONG else 3
RECIPIENT = "contact@cashplus.ma"


@dataclass
class Load:
    """Inputs sent, and the keys of those that got a positive answer."""

    smtp_sent: set[str] = field(default_factory=set)
    smtp_ok: set[str] = field(default_factory=set)
    api_sent: set[str] = field(default_factory=set)
    api_ok: set[str] = field(default_factory=set)
    imap_sent: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)


def mail_for(message_id: str, number: int) -> bytes:
    raw = complaint_mail(number)
    parsed = email.message_from_bytes(raw)
    parsed.replace_header("Message-ID", message_id)
    return parsed.as_bytes()


def smtp_client(load: Load, port: int) -> None:
    """Deliver mails one connection each, retrying any that got no 250, like an MTA.

    After ``stop``, only the retries go on, until each mail got its 250.
    """
    number, outstanding = 0, list[str]()
    while not load.stop.is_set() or outstanding:
        if outstanding:
            message_id = outstanding.pop(0)
        else:
            number += 1
            message_id = f"<smtp-{number}-{uuid.uuid4().hex[:6]}@example.ma>"
            load.smtp_sent.add(message_id)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("client@example.ma", [RECIPIENT], mail_for(message_id, number))
            load.smtp_ok.add(message_id)
        except (smtplib.SMTPException, OSError):
            outstanding.append(message_id)
            time.sleep(0.2)


def api_client(load: Load, gateway: Gateway) -> None:
    """POST complaints, retrying with the same Idempotency-Key until answered 2xx."""
    number, outstanding = 0, list[str]()
    headers = {"Authorization": f"Bearer {gateway.key}"}
    with httpx.Client(base_url=gateway.base, timeout=30) as client:
        while not load.stop.is_set() or outstanding:
            if outstanding:
                key = outstanding.pop(0)
            else:
                number += 1
                key = f"kill-{number}"
                load.api_sent.add(key)
            body = {
                "body": f"Réclamation {key}: le guichet a gardé ma carte.",
                "customer": {"phone": "+212612345678"},
                "language": "fr",
            }
            try:
                answer = client.post(
                    "/v1/complaints", json=body, headers={**headers, "Idempotency-Key": key}
                )
                if answer.status_code in (200, 201):
                    load.api_ok.add(key)
                    continue
            except httpx.TransportError:
                pass
            outstanding.append(key)
            time.sleep(0.2)


def mailbox_feeder(load: Load, dovecot: DovecotServer, account: ImapAccount) -> None:
    """Mail arriving in the inbox the poller watches, whether the gateway runs or not."""
    number = 0
    while not load.stop.wait(0.05):
        number += 1
        message_id = f"<imap-{number}-{uuid.uuid4().hex[:6]}@example.ma>"
        dovecot.append(account, mail_for(message_id, number))
        load.imap_sent.add(message_id)


def processed_ids(dovecot: DovecotServer, account: ImapAccount) -> set[str]:
    """Message-IDs in the processed folder: the mails the gateway acknowledged."""
    with dovecot.client(account) as client:
        if not client.folder_exists("Processed"):
            return set()
        client.select_folder("Processed", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    found = set()
    for item in fetched.values():
        header = email.message_from_bytes(item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
        found.add(str(header["Message-ID"]).strip())
    return found


@pytest.fixture
def kill_settings(
    data_dir: Path, broker: RabbitNode, dovecot: DovecotServer, account: ImapAccount
) -> Iterator[Settings]:
    prefix = f"kill-{uuid.uuid4().hex[:8]}."
    yield load_settings(
        data_dir=data_dir,
        broker_url=broker.url,
        topology_prefix=prefix,
        relay_poll_interval=0.05,
        relay_max_backoff=1.0,
        confirm_timeout=5.0,
        http_port=free_port(),
        smtp_port=free_port(),
        # Retrying clients on one address: no hourly budget, no per-address cap.
        smtp_max_messages_per_sender_per_hour=0,
        smtp_max_messages_per_client_per_hour=0,
        smtp_max_connections_per_address=50,
        imap_host=account.host,
        imap_port=account.port,
        imap_user=account.user,
        imap_password=SecretStr(account.password),
        imap_tls="off",
        imap_timeout=5.0,
        imap_batch_size=10,
        # A runner killed mid-batch: its claims expire soon, the next life takes them again.
        normalize_lease_seconds=5.0,
    )
    delete_namespace(broker.url, prefix)


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    return dovecot.add_user()


def start(processes: IntakeProcesses, settings: Settings, key: str | None) -> Gateway:
    gateway = start_gateway(processes, settings, key=key, http_port=settings.http_port)
    assert settings.smtp_port is not None
    wait_for_port(settings.smtp_port, gateway.process, timeout=60)
    return gateway


def run_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    return threads


def test_inputs_answered_before_random_sigkills_are_all_on_the_queue_once(
    kill_settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = random.randrange(1_000_000)
    chance = random.Random(seed)
    load = Load()
    gateway = start(intake_processes, kill_settings, None)
    assert kill_settings.smtp_port is not None
    threads = run_threads(
        [
            lambda: smtp_client(load, kill_settings.smtp_port or 0),
            lambda: api_client(load, gateway),
            lambda: mailbox_feeder(load, dovecot, account),
        ]
    )
    for _kill in range(KILLS):
        time.sleep(chance.uniform(0.5, 3.0))  # the random moment, not an assertion
        gateway.process.signal(signal.SIGKILL)
        gateway.process.wait()
        gateway = start(intake_processes, kill_settings, gateway.key)
    # The last life runs to the end: the clients' retries go through, the inbox empties.
    time.sleep(chance.uniform(0.5, 3.0))
    load.stop.set()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a client still retrying"
    assert load.smtp_ok == load.smtp_sent and load.api_ok == load.api_sent
    try:
        wait_until(lambda: dovecot.count(account, "INBOX") == 0, "the inbox emptied", timeout=240)
    except AssertionError:
        imap_lines = [line for line in gateway.process.stderr().splitlines() if "imap" in line]
        raise AssertionError("\n".join(imap_lines[-40:])) from None
    database = kill_settings.data_dir / "intake.db"
    # The edges answered on capture: the runner of the last life normalizes the rest.
    wait_until(lambda: captures_waiting(database) == 0, "the runner to catch up", timeout=120)
    wait_until(
        lambda: (counts := sqlite_counts(database))[1] >= counts[0] > 0,
        "the relay to publish every complaint",
        timeout=120,
        interval=0.5,
    )
    events = read_queue(kill_settings)
    moved = processed_ids(dovecot, account)
    acknowledged = load.smtp_ok | load.api_ok | moved
    figures = tally(
        f"SIGKILL x{KILLS} under SMTP, IMAP and API load (seed {seed})",
        sent=len(load.smtp_sent) + len(load.api_sent) + len(load.imap_sent),
        acknowledged=acknowledged,
        events=events,
        key_of=lambda data: data["evidence"]["message_id"] or data["evidence"]["idempotency_key"],
        database=database,
        extra={
            "SMTP 250": len(load.smtp_ok),
            "HTTP 2xx": len(load.api_ok),
            "IMAP moved": len(moved),
        },
    )
    figures.report(capsys)

    figures.assert_promises()
    assert moved == load.imap_sent
    assert figures.stored == len(load.smtp_ok | load.api_ok | moved)
