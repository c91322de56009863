"""The notice of a longer delay, end to end: an ``extended`` status by the API, the e-mail out.

A complaint in Spanish through the partner API; case management posts
``extended`` (``POST /v1/complaints/{reference}/status``); the case worker
(``intake case-worker``'s loop, on the machine's RabbitMQ) sends the notice
through a real SMTP relay (aiosmtpd capturing), read back here: to the
customer, in Spanish, with the reason and the new date.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from channels.webform.i18n import format_date
from config.settings import Settings
from gateway.app import create_app
from gateway.cases.worker import CaseWorker
from gateway.lib.services import Services, build_services
from tests.peers.processes import wait_until
from tests.peers.runners import normalize_captured
from tests.peers.smtp_capture import SmtpCapture, smtp_capture

pytestmark = pytest.mark.integration

SPANISH = "Hola, envié dinero a mi hermano en Fez y nunca llegó. Por favor, revisen la operación."


@pytest.fixture
def relay() -> Iterator[SmtpCapture]:
    with smtp_capture() as capture:
        yield capture


@pytest.fixture
def services(amqp_settings: Settings, relay: SmtpCapture) -> Iterator[Services]:
    with_relay = amqp_settings.model_copy(update={"smtp_relay_url": SecretStr(relay.url)})
    built = build_services(with_relay)
    try:
        yield built
    finally:
        built.close()


def test_an_extension_posted_by_the_api_reaches_the_customer_in_spanish_by_email(
    services: Services, relay: SmtpCapture
) -> None:
    crm = services.store.api_keys.create("crm")
    cases = services.store.api_keys.create("case-management", {"status:write"})
    client = TestClient(create_app(services))
    accepted = client.post(
        "/v1/complaints",
        headers={"Authorization": f"Bearer {crm}", "Idempotency-Key": str(uuid.uuid4())},
        json={"body": SPANISH, "customer": {"email": "lucia@example.es"}, "language": "es"},
    ).json()
    normalize_captured(services)
    reference = accepted["reference"]
    new_due = datetime.fromisoformat(accepted["answer_due_at"]) + timedelta(days=30)
    at = datetime.fromisoformat(accepted["received_at"]) + timedelta(seconds=1)
    posted = client.post(
        f"/v1/complaints/{reference}/status",
        headers={"Authorization": f"Bearer {cases}"},
        json={
            "status": "extended",
            "at": at.isoformat(),
            "answer_due_at": new_due.isoformat(),
            "reason": "documents",
        },
    )
    assert posted.status_code == 201, posted.text
    worker = CaseWorker(services)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        (mail,) = wait_until(lambda: relay.messages() or None, "the notice", timeout=60)
        wait_until(
            lambda: services.store.cases.notices_of(reference)[0].status == "sent",
            "the notice recorded as sent",
        )
    finally:
        stop.set()
        thread.join(30)

    assert mail.rcpt_tos == ["lucia@example.es"]
    message = mail.message
    assert message["Subject"] == f"Su reclamación {reference}: nueva fecha de respuesta"
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()
    assert "esperamos documentos necesarios para examinarla" in body
    expected = format_date(new_due, "es", services.settings.timezone)
    assert f"Le responderemos a más tardar el {expected}." in body
    assert " de " in expected  # a Spanish date: "15 de marzo de 2027"
    (notice,) = services.store.cases.notices_of(reference)
    assert (notice.method, notice.recipient) == ("email", "lucia@example.es")
