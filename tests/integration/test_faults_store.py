"""The store unavailable: its disk full, or its database locked by someone else.

The gateway (``intake run``: web, SMTP receiver, IMAP poller, relay) keeps
its data dir on a small tmpfs of its own (``tests.peers.smallfs``) and
publishes to a private RabbitMQ node. When the disk is full, or another
process holds SQLite's write lock past ``INTAKE_STORE_LOCK_TIMEOUT`` (1 s
here), nothing can be recorded, so nothing may be acknowledged: SMTP answers
451, HTTP 503 with Retry-After, and the IMAP mail stays in the inbox. Once the
store is back, the same inputs, sent again as real clients do, each become
one complaint.
"""

from __future__ import annotations

import email
import smtplib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from config.settings import Settings, load_settings
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.faults import Gateway, read_queue, sqlite_counts, start_gateway, tally
from tests.peers.imap import complaint_mail
from tests.peers.processes import IntakeProcesses, free_port, wait_for_port, wait_until
from tests.peers.rabbitmq_node import (  # noqa: F401 (fixtures)
    RabbitNode,
    broker_fixture,
    delete_namespace,
    rabbitmq_node_fixture,
)
from tests.peers.smallfs import fill, small_filesystem

RECIPIENT = "contact@cashplus.ma"
# Seconds a write waits for a locked database before the input is refused.
LOCK_TIMEOUT = 1.0


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    return dovecot.add_user()


@pytest.fixture
def small_data_dir() -> Iterator[Path]:
    with small_filesystem("16m") as mountpoint:
        yield mountpoint


def store_settings(data_dir: Path, broker: RabbitNode, account: ImapAccount) -> Settings:
    return load_settings(
        data_dir=data_dir,
        broker_url=broker.url,
        topology_prefix=f"store-{uuid.uuid4().hex[:8]}.",
        relay_poll_interval=0.2,
        relay_max_backoff=1.0,
        smtp_port=free_port(),
        smtp_max_messages_per_sender_per_hour=0,
        smtp_max_messages_per_client_per_hour=0,
        imap_host=account.host,
        imap_port=account.port,
        imap_user=account.user,
        imap_password=SecretStr(account.password),
        imap_tls="off",
        imap_timeout=5.0,
        imap_poll_interval=0.5,
        store_lock_timeout=LOCK_TIMEOUT,
    )


@pytest.fixture
def running(
    intake_processes: IntakeProcesses,
    broker: RabbitNode,
    account: ImapAccount,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Gateway, Settings]]:
    folder = request.getfixturevalue(request.param)
    settings = store_settings(folder, broker, account)
    gateway = start_gateway(intake_processes, settings)
    assert settings.smtp_port is not None
    wait_for_port(settings.smtp_port, gateway.process, timeout=60)
    yield gateway, settings
    gateway.process.kill()  # before the tmpfs is unmounted under it
    delete_namespace(broker.url, settings.topology_prefix)


# -- the three sources and their answers -----------------------------------------------
def mail(tag: str) -> tuple[str, bytes]:
    message_id = f"<{tag}-{uuid.uuid4().hex[:8]}@example.ma>"
    parsed = email.message_from_bytes(complaint_mail(hash(tag) % 1000))
    parsed.replace_header("Message-ID", message_id)
    return message_id, parsed.as_bytes()


# Far above a few lock timeouts, far below the minutes a sender used to wait
# while background writers of the process each waited their turn at the lock.
ANSWER_BOUND = 30.0


def smtp_code(settings: Settings, raw: bytes) -> int:
    with smtplib.SMTP("127.0.0.1", settings.smtp_port or 0, timeout=ANSWER_BOUND) as client:
        client.ehlo("mx.example.ma")
        client.mail("client@example.ma")
        client.rcpt(RECIPIENT)
        try:
            code, _text = client.data(raw)
        except smtplib.SMTPServerDisconnected as exc:
            raise AssertionError(f"no answer to DATA within {ANSWER_BOUND:.0f} s: {exc}") from None
    return int(code)


def api_answer(gateway: Gateway, key: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.base}/v1/complaints",
        headers={"Authorization": f"Bearer {gateway.key}", "Idempotency-Key": key},
        json={
            "body": f"Réclamation {key}: ma carte est bloquée.",
            "customer": {"phone": "0612345678"},
        },
        timeout=ANSWER_BOUND,
    )


def imap_store_failures(gateway: Gateway) -> int:
    """Warnings and errors of the poller's side (the poller itself, or its mailbox lease)."""
    return sum(
        1
        for line in gateway.process.stderr().splitlines()
        if "imap" in line.lower() and (" ERROR " in line or " WARNING " in line)
    )


# -- the test body, shared by both kinds of outage -------------------------------------------
def check_outage(
    gateway: Gateway,
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    outage: str,
) -> tuple[str, str, str]:
    """With the store away: 451, 503, the mail left in the inbox, nothing recorded.

    Returns the inputs (SMTP Message-ID, IMAP Message-ID, the raw SMTP mail).
    """
    database = settings.data_dir / "intake.db"
    stored_before = sqlite_counts(database)[0]
    smtp_id, raw = mail("smtp")
    imap_id, imap_raw = mail("imap")
    failures_before = imap_store_failures(gateway)
    dovecot.append(account, imap_raw)

    assert smtp_code(settings, raw) == 451, outage
    refused = api_answer(gateway, "store-out")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"].isdigit()
    try:
        wait_until(
            lambda: imap_store_failures(gateway) > failures_before,
            "the poller to meet the store failure",
            timeout=60,
        )
    except AssertionError:
        lines = [line for line in gateway.process.stderr().splitlines() if "imap" in line.lower()]
        raise AssertionError("\n".join(lines[-30:])) from None
    assert dovecot.count(account, "INBOX") == 1, "the mail was acknowledged"
    assert sqlite_counts(database)[0] == stored_before, "something was recorded"
    return smtp_id, imap_id, raw.decode()


def check_recovery(
    gateway: Gateway,
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    inputs: tuple[str, str, str],
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    smtp_id, imap_id, raw = inputs
    assert smtp_code(settings, raw.encode()) == 250
    assert api_answer(gateway, "store-out").status_code == 201
    wait_until(lambda: dovecot.count(account, "INBOX") == 0, "the mail moved", timeout=60)
    database = settings.data_dir / "intake.db"
    wait_until(
        lambda: (counts := sqlite_counts(database))[1] >= counts[0] >= 3,
        "the relay to publish",
        timeout=60,
    )
    events = read_queue(settings, silence=3.0)
    figures = tally(
        name,
        sent=3,
        acknowledged={smtp_id, imap_id, "store-out"},
        events=events,
        key_of=lambda data: data["evidence"]["message_id"] or data["evidence"]["idempotency_key"],
        database=database,
        extra={"answers during the outage": "451, 503, left in inbox"},
    )
    figures.report(capsys)
    figures.assert_promises()
    assert figures.stored == 3


@pytest.mark.parametrize("running", ["small_data_dir"], indirect=True)
def test_full_disk_answers_451_503_leaves_imap_mail_then_each_retry_is_one_complaint(
    running: tuple[Gateway, Settings],
    dovecot: DovecotServer,
    account: ImapAccount,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway, settings = running
    filler = fill(settings.data_dir)
    try:
        inputs = check_outage(gateway, settings, dovecot, account, "disk full")
    finally:
        filler.release()
    check_recovery(gateway, settings, dovecot, account, inputs, "store disk full", capsys)


@pytest.mark.parametrize("running", ["data_dir"], indirect=True)
def test_locked_database_answers_451_503_leaves_imap_mail_then_each_retry_is_one_complaint(
    running: tuple[Gateway, Settings],
    dovecot: DovecotServer,
    account: ImapAccount,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway, settings = running
    # Another process takes the write lock and keeps it, as a stuck migration would.
    locker = sqlite3.connect(
        settings.data_dir / "intake.db", timeout=ANSWER_BOUND, isolation_level=None
    )
    locker.execute("BEGIN EXCLUSIVE")
    try:
        inputs = check_outage(gateway, settings, dovecot, account, "database locked")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    check_recovery(gateway, settings, dovecot, account, inputs, "store database locked", capsys)
