"""One customer across channels: the partner API, an SMS and an e-mail share a customer key.

The real gateway (HTTP app, phone line worker, relay) on the machine's
RabbitMQ, the real SMTP receiver driven by the stdlib client (with the
normalizer runner that turns its captures into complaints), Twilio's
webhooks signed with twilio's own validator; the complaints are read from
the ``complaints.inbound`` queue the way a downstream consumer reads them.
"""

from __future__ import annotations

import smtplib
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from channels.email.smtp import SmtpServer, run_server
from config.settings import Settings
from tests.peers.processes import free_port, wait_until
from tests.peers.queues import drain
from tests.peers.runners import running_normalizer, settled
from tests.peers.twilio import (
    ACCOUNT_SID,
    LINE_NUMBER,
    RunningGateway,
    TwilioWebhooks,
    running_gateway,
    sid,
    twilio_settings,
)

SECRET = "customer-key-secret-of-this-test"
PHONE = "0612345678"
EMAIL = "Amina.Bennani@Example.ma"


@pytest.fixture
def gateway(amqp_settings: Settings) -> Iterator[RunningGateway]:
    settings = twilio_settings(
        amqp_settings,
        customer_key_secret=SecretStr(SECRET),
        smtp_port=free_port(),
        smtp_recipients="contact@cashplus.ma",
    )
    with running_gateway(settings, relay=True) as running:
        server = SmtpServer(running.services)
        stop = threading.Event()
        thread = threading.Thread(target=run_server, args=(server, stop), daemon=True)
        thread.start()
        try:
            wait_until(lambda: server.listening or not thread.is_alive(), "the SMTP server")
            with running_normalizer(running.services):
                yield running
        finally:
            stop.set()
            thread.join(15)


def api_key(gateway: RunningGateway, *scopes: str) -> dict[str, str]:
    keys = gateway.services.store.api_keys
    name = f"crm-{sid('k')[:12]}"
    key = keys.create(name, scopes) if scopes else keys.create(name)
    return {"Authorization": f"Bearer {key}"}


def by_api(gateway: RunningGateway, headers: dict[str, str]) -> str:
    response = httpx.post(
        f"{gateway.base_url}/v1/complaints",
        json={
            "body": "Bonjour, mon transfert de 800 dirhams n'est jamais arrivé.",
            "customer": {"name": "Amina", "phone": PHONE, "email": EMAIL},
            "language": "fr",
        },
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    settled(gateway.services)  # the runner has recorded the complaint
    return str(response.json()["reference"])


def by_sms(hooks: TwilioWebhooks, sender: str, body: str) -> None:
    response = hooks.post(
        "/twilio/messaging",
        {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": sid("SM"),
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
        },
    )
    assert response.status_code == 200, response.text
    assert ET.fromstring(response.content)[0].tag == "Message"


def by_mail(gateway: RunningGateway, sender: str) -> None:
    mail = EmailMessage()
    mail["From"] = f"Amina Bennani <{sender}>"
    mail["To"] = "contact@cashplus.ma"
    mail["Subject"] = "Transfert non reçu"
    mail["Message-ID"] = f"<{sid('ml')}@example.ma>"
    mail.set_content("Bonjour, je relance pour mon transfert de 800 dirhams, toujours rien.")
    port = gateway.services.settings.smtp_port
    assert port is not None
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(mail, from_addr=sender, to_addrs=["contact@cashplus.ma"])


def published(settings: Settings, count: int) -> list[dict[str, Any]]:
    """The complaints on ``complaints.inbound``, in the order they were received."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len(found) < count and time.monotonic() < deadline:
        found += [event["data"] for event in drain(settings, "inbound")]  # type: ignore[misc]
        time.sleep(0.2)
    assert len(found) == count, f"{len(found)} of {count} complaints published"
    return sorted(found, key=lambda data: str(data["received_at"]))


def test_api_sms_and_email_of_one_customer_share_a_key_and_the_last_lists_the_others(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    first = by_api(gateway, api_key(gateway))
    by_sms(hooks, "+212612345678", "Salam, ma wselnich transfert dyali, 3afak chofo")
    by_mail(gateway, EMAIL.lower())
    by_sms(hooks, "+212661234567", "Salam, carte dyali t7bsat f guichet")  # someone else

    api, sms, mail, other = published(gateway.services.settings, 4)

    assert (api["channel"], sms["channel"], mail["channel"]) == ("api", "sms", "email")
    assert api["reference"] == first
    key = api["customer"]["key"]
    assert key.startswith("cus_")
    assert sms["customer"]["key"] == key
    assert mail["customer"]["key"] == key
    assert other["customer"]["key"] not in (None, key)
    assert api["customer"]["related"] == []
    assert sms["customer"]["related"] == [api["reference"]]
    assert mail["customer"]["related"] == [api["reference"], sms["reference"]]
    assert other["customer"]["related"] == []
    assert mail["schema_version"] == "1.5"


def test_the_customer_route_lists_a_customers_complaints_for_a_read_all_key(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    first = by_api(gateway, api_key(gateway))
    by_sms(hooks, "+212612345678", "Salam, ma wselnich transfert dyali, 3afak chofo")
    message = gateway.services.store.complaints.get_by_reference(first)
    assert message is not None and message.customer.key is not None
    key = message.customer.key
    url = f"{gateway.base_url}/v1/customers/{key}/complaints"

    listed = httpx.get(url, headers=api_key(gateway, "complaints:read-all"), timeout=30)

    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["customer_key"] == key
    assert [item["channel"] for item in body["complaints"]] == ["sms", "api"]  # newest first
    assert body["complaints"][1]["reference"] == first
    assert body["complaints"][1]["status"] == "received"
    assert body["complaints"][1]["answer_due_at"]
    assert body["next"] is None


def test_the_customer_route_pages_through_a_long_list(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    for _ in range(3):
        by_sms(hooks, "+212612345678", f"Salam, transfert {sid('tx')} ma wselnich")
    (key,) = {message["customer"]["key"] for message in published(gateway.services.settings, 3)}
    headers = api_key(gateway, "complaints:read-all")

    first = httpx.get(
        f"{gateway.base_url}/v1/customers/{key}/complaints",
        params={"limit": 2},
        headers=headers,
        timeout=30,
    ).json()
    following = httpx.URL(first["next"])
    second = httpx.get(
        f"{gateway.base_url}{following.raw_path.decode()}", headers=headers, timeout=30
    ).json()

    assert len(first["complaints"]) == 2
    assert len(second["complaints"]) == 1
    assert second["next"] is None
    listed = [item["reference"] for item in first["complaints"] + second["complaints"]]
    assert len(set(listed)) == 3


def test_the_customer_route_refuses_a_key_without_the_read_all_scope(
    gateway: RunningGateway,
) -> None:
    first = by_api(gateway, api_key(gateway))
    message = gateway.services.store.complaints.get_by_reference(first)
    assert message is not None
    url = f"{gateway.base_url}/v1/customers/{message.customer.key}/complaints"

    refused = httpx.get(url, headers=api_key(gateway), timeout=30)
    anonymous = httpx.get(url, timeout=30)

    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["scope"] == "complaints:read-all"
    assert anonymous.status_code == 401


def test_an_unknown_customer_key_is_404_and_a_malformed_one_422(gateway: RunningGateway) -> None:
    headers = api_key(gateway, "complaints:read-all")
    unknown = httpx.get(
        f"{gateway.base_url}/v1/customers/cus_{'a' * 32}/complaints", headers=headers, timeout=30
    )
    malformed = httpx.get(
        f"{gateway.base_url}/v1/customers/+212612345678/complaints", headers=headers, timeout=30
    )

    assert unknown.status_code == 404, unknown.text
    assert malformed.status_code == 422, malformed.text


def test_a_partner_reading_its_complaint_does_not_see_the_customers_other_references(
    gateway: RunningGateway,
) -> None:
    # Partner A files a complaint for the customer; partner B files one with the
    # same phone and reads its own back: A's reference must not show.
    by_api(gateway, api_key(gateway))
    partner_b = api_key(gateway)
    mine = by_api(gateway, partner_b)
    staff = api_key(gateway, "complaints:read-all")

    as_partner = httpx.get(f"{gateway.base_url}/v1/complaints/{mine}", headers=partner_b)
    as_staff = httpx.get(f"{gateway.base_url}/v1/complaints/{mine}", headers=staff)

    assert as_partner.status_code == as_staff.status_code == 200
    assert as_partner.json()["complaint"]["customer"]["related"] == []
    assert len(as_staff.json()["complaint"]["customer"]["related"]) == 1
