"""Several instances on one PostgreSQL and one RabbitMQ, one of each process killed mid-run.

Three ``intake web``, two ``intake imap poll``, two ``intake relay``, two
``intake normalize-worker`` (what the API, SMTP and IMAP edges captured) and an
``intake smtp serve``, as the Procfile runs them on several machines. Mixed
load arrives through the API (spread over the web instances, retried on
another instance as a load balancer would), SMTP, the IMAP mailbox and the
web form. Mid-run a web instance, the active IMAP poller, a relay and a
normalizer runner get SIGKILL. Then: every accepted input is one complaint
(no input under two ids), every complaint reached ``complaints.inbound``,
and the standby poller took the mailbox over and read what arrived after
the kill.
"""

from __future__ import annotations

import itertools
import json
import signal
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import Engine, func, select

from config.settings import Settings, load_settings
from gateway.store.db import create_store_engine, reading
from gateway.store.tables import ComplaintRow, LeaseRow, OutboxRow
from router.consumer import consume_messages
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import complaint_mail
from tests.peers.processes import (
    IntakeProcess,
    IntakeProcesses,
    env_for,
    free_port,
    wait_for_port,
    wait_until,
)
from tests.peers.webform import fresh_form, valid_fields

PER_PHASE = {"api": 12, "smtp": 5, "imap": 5, "webform": 3}


@dataclass
class Cluster:
    settings: Settings
    env: dict[str, str]
    engine: Engine
    api_key: str
    account: ImapAccount
    webs: list[tuple[IntakeProcess, str]] = field(default_factory=list)
    pollers: list[IntakeProcess] = field(default_factory=list)
    relays: list[IntakeProcess] = field(default_factory=list)
    runners: list[IntakeProcess] = field(default_factory=list)
    smtp_port: int = 0
    accepted: dict[str, int] = field(default_factory=dict)

    def alive_webs(self) -> list[str]:
        return [url for process, url in self.webs if process.running()]

    def complaints(self) -> int:
        with reading(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(ComplaintRow)) or 0)

    def unpublished(self) -> int:
        with reading(self.engine) as session:
            query = select(func.count()).where(OutboxRow.published_at.is_(None))
            return int(session.scalar(query) or 0)

    def lease_holder(self) -> tuple[str, int] | None:
        with reading(self.engine) as session:
            row = session.scalars(select(LeaseRow)).first()
            return None if row is None else (row.holder, row.epoch)


@pytest.fixture
def cluster(
    amqp_settings: Settings,
    postgres_url: str,
    dovecot: DovecotServer,
    intake_processes: IntakeProcesses,
) -> Iterator[Cluster]:
    account = dovecot.add_user()
    smtp_port = free_port()
    settings = load_settings(
        **amqp_settings.model_dump(exclude_unset=True),
        database_url=postgres_url,
        imap_host=account.host,
        imap_port=account.port,
        imap_user=account.user,
        imap_password=account.password,
        imap_tls="off",
        imap_timeout=5.0,
        imap_idle_seconds=5.0,
        smtp_port=smtp_port,
        smtp_max_messages_per_sender_per_hour=0,
        smtp_max_messages_per_client_per_hour=0,
        leader_lease_seconds=3.0,
        # A killed runner's claims expire soon: the other runner takes them again.
        normalize_lease_seconds=3.0,
        relay_batch_size=5,
        session_secret="shared-by-every-web-instance",
        webform_max_per_hour=1000,
    )
    env = env_for(settings)
    migrated = intake_processes.run("migrate", env=env)
    assert migrated.popen.returncode == 0, migrated.describe()
    key = intake_processes.run("api-key", "create", "crm", env=env).stdout().strip()
    engine = create_store_engine(postgres_url)
    found = Cluster(settings, env, engine, key, account, smtp_port=smtp_port)
    for _ in range(3):
        port = free_port()
        process = intake_processes.start("web", env={**env, "INTAKE_HTTP_PORT": str(port)})
        found.webs.append((process, f"http://127.0.0.1:{port}"))
    found.pollers = [intake_processes.start("imap", "poll", env=env) for _ in range(2)]
    found.relays = [intake_processes.start("relay", env=env) for _ in range(2)]
    found.runners = [intake_processes.start("normalize-worker", env=env) for _ in range(2)]
    smtp = intake_processes.start("smtp", "serve", env=env)
    for process, url in found.webs:
        wait_for_port(int(url.rsplit(":", 1)[1]), process, timeout=60)
    wait_for_port(smtp_port, smtp, timeout=60)
    try:
        yield found
    finally:
        engine.dispose()


def send_api(cluster: Cluster, number: int) -> None:
    """POST to the next live instance; on a dead one, retry elsewhere with the same key."""
    body = {
        "body": f"Réclamation {number}: transfert non reçu",
        "customer": {"phone": "0661234567"},
    }
    headers = {"Authorization": f"Bearer {cluster.api_key}", "Idempotency-Key": f"load-{number}"}
    for url in itertools.islice(itertools.cycle(cluster.alive_webs()), number % 3, number % 3 + 6):
        try:
            answer = httpx.post(f"{url}/v1/complaints", json=body, headers=headers, timeout=30)
        except httpx.TransportError:
            continue
        if answer.status_code in (200, 201):
            cluster.accepted[f"api-{number}"] = 1
            return
    raise AssertionError(f"API complaint {number} accepted by no instance")


def send_smtp(cluster: Cluster, number: int) -> None:
    with smtplib.SMTP("127.0.0.1", cluster.smtp_port, timeout=30) as client:
        client.sendmail(
            f"client{number}@example.ma", ["contact@cashplus.ma"], complaint_mail(number)
        )
    cluster.accepted[f"smtp-{number}"] = 1


def send_webform(cluster: Cluster, number: int) -> None:
    """Form shown by one instance, posted to another (shared session secret)."""
    first, second = cluster.alive_webs()[:2]
    with httpx.Client(base_url=first, timeout=30) as browser:
        token = fresh_form(browser)
        fields = valid_fields(token, text=f"Formulaire {number}: ma carte est bloquée.")
        answer = browser.post(f"{second}/fr/", data=fields)  # the jar holds the cookie
    assert answer.status_code == 200, answer.text[:500]
    cluster.accepted[f"webform-{number}"] = 1


def load(cluster: Cluster, dovecot: DovecotServer, phase: int) -> None:
    base = phase * 100
    for number in range(base, base + PER_PHASE["api"]):
        send_api(cluster, number)
    for number in range(base + 20, base + 20 + PER_PHASE["smtp"]):
        send_smtp(cluster, number)
    for number in range(base + 40, base + 40 + PER_PHASE["imap"]):
        dovecot.append(cluster.account, complaint_mail(number))
        cluster.accepted[f"imap-{number}"] = 1
    for number in range(base + 60, base + 60 + PER_PHASE["webform"]):
        send_webform(cluster, number)


def active_poller(cluster: Cluster) -> IntakeProcess:
    def holder() -> IntakeProcess | None:
        lease = cluster.lease_holder()
        if lease is None:
            return None
        pid = int(lease[0].split(":")[1])
        return next((p for p in cluster.pollers if p.pid == pid and p.running()), None)

    return wait_until(holder, "a poller to hold the mailbox lease", timeout=30)


def test_three_webs_two_pollers_two_relays_lose_nothing_when_one_of_each_is_killed(
    cluster: Cluster, dovecot: DovecotServer
) -> None:
    leader = active_poller(cluster)
    load(cluster, dovecot, phase=1)

    victims = [cluster.webs[0][0], leader, cluster.relays[0], cluster.runners[0]]
    for process in victims:
        process.signal(signal.SIGKILL)
        process.wait()
    _holder, epoch_before = cluster.lease_holder() or ("", 0)
    load(cluster, dovecot, phase=2)

    expected = len(cluster.accepted)
    wait_until(
        lambda: cluster.complaints() >= expected and cluster.unpublished() == 0,
        f"{expected} complaints recorded and published",
        timeout=60,
        interval=0.5,
    )
    assert cluster.complaints() == expected  # no input recorded under two ids

    standby = next(p for p in cluster.pollers if p is not leader)
    holder, epoch = cluster.lease_holder() or ("", 0)
    assert int(holder.split(":")[1]) == standby.pid, "the standby poller did not take over"
    assert epoch > epoch_before or epoch >= 2
    assert dovecot.count(cluster.account, "INBOX") == 0

    ids: list[str] = []
    consume_messages(cluster.settings, lambda body: ids.append(json.loads(body)["id"]), timeout=5)
    with reading(cluster.engine) as session:
        recorded = set(session.scalars(select(ComplaintRow.id)))
    assert set(ids) == recorded  # every complaint reached the queue
    # Repeats (a relay killed between the broker's confirm and its mark) carry the same id.
    assert len(ids) - len(set(ids)) <= 5
