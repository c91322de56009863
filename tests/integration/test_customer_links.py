"""Customer keys in the store: on PostgreSQL, across secrets, the backfill, the operator page.

Complaints go through the real hand-off (``tests.peers.complaints``); the
backfill runs as the ``intake`` command an operator types; the operator
page is read through the app with a staff member logged in.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from config.settings import Settings, load_settings
from gateway.app import create_app
from gateway.lib.http.auth import accounts_for
from gateway.lib.services import Services, build_services
from gateway.store.db import reading, writing
from gateway.store.tables import ComplaintContactRow, CustomerPointRow
from normalizer.contact import build_customer
from normalizer.contract import Channel, ComplaintMessage, Origin
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.pipeline import PipelineContext, normalize
from tests.peers.processes import INTAKE, env_for

SECRET = "secret-of-the-customer-links-test"
PASSWORD = "exploitation-2026-casa"


def record(
    services: Services,
    *,
    phone: str | None = None,
    email: str | None = None,
    days_ago: float = 0,
    channel: Channel = Channel.API,
) -> ComplaintMessage:
    """One complaint of this customer, through the store's real hand-off."""
    received = datetime.now(UTC) - timedelta(days=days_ago)
    text = f"Mon transfert n'est pas arrivé ({received.isoformat()}, {phone}, {email})."
    raw = RawInput(
        channel=channel,
        data=text.encode(),
        content_type="text/plain; charset=utf-8",
        received_at=received,
        dedup_key=f"test:{received.isoformat()}:{phone}:{email}",
        source_ids={},
    )
    draft = ComplaintDraft(
        channel=channel,
        received_at=received,
        body=text,
        customer=build_customer(phone=phone, email=email),
        declared_language="fr",
    )
    normalize(draft, PipelineContext())
    return services.store.complaints.record_complaint(raw, draft).message


def built(data_dir: Path, secret: str, **extra: object) -> Services:
    data_dir.mkdir(parents=True, exist_ok=True)
    return build_services(load_settings(data_dir=data_dir, customer_key_secret=secret, **extra))


@pytest.fixture
def pg_services(tmp_path: Path, postgres_url: str) -> Iterator[Services]:
    services = built(tmp_path / "var", SECRET, database_url=postgres_url)
    yield services
    services.close()


@pytest.fixture
def keyed_settings(settings: Settings) -> Settings:
    return load_settings(data_dir=settings.data_dir, customer_key_secret=SECRET)


@pytest.fixture
def keyed(keyed_settings: Settings) -> Iterator[Services]:
    services = build_services(keyed_settings)
    yield services
    services.close()


def test_on_postgresql_a_phone_then_an_email_given_with_it_make_one_customer(
    pg_services: Services,
) -> None:
    first = record(pg_services, phone="+212612345678", email="amina@example.ma", days_ago=3)
    second = record(pg_services, phone="0612345678", channel=Channel.SMS, days_ago=2)
    third = record(pg_services, email="AMINA@example.ma", channel=Channel.EMAIL, days_ago=1)
    stranger = record(pg_services, phone="+212661234567")

    assert first.customer.key is not None
    assert second.customer.key == third.customer.key == first.customer.key
    assert stranger.customer.key not in (None, first.customer.key)
    assert third.customer.related == [first.reference, second.reference]
    listed = pg_services.store.customers.complaints_of(first.customer.key)
    assert [message.reference for message in listed] == [
        third.reference,
        second.reference,
        first.reference,
    ]


def test_related_reaches_back_twelve_months_only(keyed: Services) -> None:
    old = record(keyed, phone="0612345678", days_ago=400)
    recent = record(keyed, phone="0612345678", days_ago=100)
    today = record(keyed, phone="0612345678")

    assert old.customer.key == recent.customer.key == today.customer.key
    assert today.customer.related == [recent.reference]


def test_a_complaint_without_phone_or_email_has_no_key(keyed: Services) -> None:
    message = record(keyed)

    assert message.customer.key is None
    assert message.customer.related == []


def test_the_same_secret_gives_the_same_key_and_another_secret_another(tmp_path: Path) -> None:
    keys = []
    for folder, secret in (("a", SECRET), ("b", SECRET), ("c", "another secret")):
        services = built(tmp_path / folder, secret)
        try:
            keys.append(record(services, phone="0612345678").customer.key)
        finally:
            services.close()

    assert keys[0] == keys[1]
    assert keys[2] != keys[0]


def test_without_a_secret_set_the_data_folder_keeps_one_for_every_process(
    tmp_path: Path,
) -> None:
    keys = []
    for _ in range(2):
        services = built(tmp_path / "var", "")
        try:
            keys.append(record(services, phone="0612345678").customer.key)
        finally:
            services.close()

    assert keys[0] is not None and keys[0] == keys[1]
    assert (tmp_path / "var" / "customer-key.secret").exists()


def test_backfill_keys_complaints_stored_before_the_keys_existed(
    keyed: Services, keyed_settings: Settings
) -> None:
    first = record(keyed, phone="0612345678", days_ago=2)
    second = record(keyed, email="amina@example.ma", phone="0612345678", days_ago=1)
    record(keyed)  # no phone, no e-mail: looked at, no key
    with writing(keyed.store.engine) as session:  # as a database of before migration 0020
        session.execute(delete(ComplaintContactRow))
        session.execute(delete(CustomerPointRow))

    done = subprocess.run(
        [INTAKE, "customers", "backfill", "--batch", "2"],
        env=env_for(keyed_settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "2 complaint(s) keyed, 1 without a phone or e-mail" in done.stdout
    assert "2/3 complaints" in done.stderr and "3/3 complaints" in done.stderr
    view = keyed.store.customers.of_complaint(second.id)
    assert view.key == first.customer.key  # the same key as when it was recorded
    assert view.related == (first.reference,)
    again = subprocess.run(
        [INTAKE, "customers", "backfill"],
        env=env_for(keyed_settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "0 complaint(s) keyed" in again.stdout
    with reading(keyed.store.engine) as session:
        rows = session.scalar(select(func.count()).select_from(ComplaintContactRow))
    assert rows == 3  # first: its phone; second: its phone and its e-mail


def _logged_in(services: Services) -> TestClient:
    accounts_for(services).add("karim", PASSWORD, role="operator")
    client = TestClient(create_app(services), headers={"Accept": "text/html"})
    page = client.get("/staff/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = client.post(
        "/staff/login",
        data={"name": "karim", "password": PASSWORD, "csrf_token": token.group(1), "next": "/ops/"},
    )
    assert answer.status_code == 200, answer.text
    return client


def test_the_operator_page_shows_a_complaints_customer_key_and_related_references(
    keyed: Services,
) -> None:
    first = record(keyed, phone="0612345678", days_ago=2)
    second = record(keyed, email="amina@example.ma", phone="0612345678", channel=Channel.EMAIL)
    client = _logged_in(keyed)

    found = client.get("/ops/complaints/", params={"reference": second.reference.lower()})
    page = client.get(f"/ops/complaints/{second.reference}")
    missing = client.get("/ops/complaints/CP-2222-2222")

    assert found.url.path == f"/ops/complaints/{second.reference}"
    assert page.status_code == 200
    assert f'id="customer-key" dir="ltr">{second.customer.key}<' in page.text
    assert f'href="/ops/complaints/{first.reference}"' in page.text
    assert "0612345678" not in page.text and "amina@example.ma" not in page.text
    assert "script-src" in page.headers["content-security-policy"]
    assert missing.status_code == 404


def test_complaints_forwarded_by_a_regulator_are_not_keyed_to_its_address(
    keyed: Services,
) -> None:
    # The forward's contact is the regulator's own mailbox: two forwards about
    # two customers must not become one customer listing the other's reference.
    forwards = []
    for number in (1, 2):
        received = datetime.now(UTC) - timedelta(minutes=number)
        text = f"Réclamation transmise n°{number}: transfert non reçu."
        raw = RawInput(
            channel=Channel.EMAIL,
            data=text.encode(),
            content_type="text/plain; charset=utf-8",
            received_at=received,
            dedup_key=f"test:bam:{number}:{received.isoformat()}",
            source_ids={},
        )
        draft = ComplaintDraft(
            channel=Channel.EMAIL,
            origin=Origin.BANK_AL_MAGHRIB,
            received_at=received,
            body=text,
            customer=build_customer(email="reclamations@bkam.ma"),
            declared_language="fr",
        )
        normalize(draft, PipelineContext())
        forwards.append(keyed.store.complaints.record_complaint(raw, draft).message)

    assert [message.customer.key for message in forwards] == [None, None]
    assert [message.customer.related for message in forwards] == [[], []]
