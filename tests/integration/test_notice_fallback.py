"""The notice of a longer delay to a WhatsApp customer falls back like an acknowledgement.

Weeks after the customer's last message the 24-hour WhatsApp window is
closed: Twilio refuses a free-form message with 63016. The notice must then
reach the customer by SMS (the next method of the WhatsApp channel's order),
not end as failed. The real ``twilio`` client talks to the local stand-in of
Twilio's API (``tests/peers/twilio_api.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from gateway.app import create_app
from gateway.cases.notices import Notifier
from gateway.lib.services import Services, build_services
from normalizer.contract import Channel, Customer
from tests.peers.acks import other_complaint
from tests.peers.twilio_api import TwilioApi, twilio_api, twilio_settings

pytestmark = pytest.mark.integration

PHONE = "+212661234567"
WHATSAPP_NUMBER = "+14155238886"


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with twilio_api() as stand_in:
        stand_in.outside_window.add(PHONE)
        yield stand_in


@pytest.fixture
def services(settings: Settings, api: TwilioApi) -> Iterator[Services]:
    built = build_services(twilio_settings(settings, api, twilio_whatsapp_number=WHATSAPP_NUMBER))
    try:
        yield built
    finally:
        built.close()


def test_a_whatsapp_notice_outside_the_window_is_sent_by_sms(
    services: Services, api: TwilioApi
) -> None:
    complaint = other_complaint(
        services,
        Channel.WHATSAPP,
        "Bonjour, mon transfert de 500 dirhams n'est pas arrivé.",
        Customer(phone=PHONE),
        received_ago=timedelta(days=20),
    )
    key = services.store.api_keys.create("case-management", {"status:write"})
    due = complaint.answer_due_at + timedelta(days=20)
    answer = TestClient(create_app(services)).post(
        f"/v1/complaints/{complaint.reference}/status",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "status": "extended",
            "at": datetime.now(UTC).isoformat(),
            "answer_due_at": due.isoformat(),
            "reason": "third_party",
        },
    )
    assert answer.status_code == 201, answer.text

    notifier = Notifier(services)
    notifier.send_due()  # WhatsApp refused (63016): the SMS is planned at once
    notifier.send_due()

    whatsapp, sms = api.recorded()
    assert (whatsapp.form["To"], whatsapp.code) == (f"whatsapp:{PHONE}", 63016)
    assert (sms.form["To"], sms.code) == (PHONE, None)
    assert complaint.reference in sms.form["Body"]
    (notice,) = services.store.cases.notices_of(complaint.reference)
    assert (notice.status, notice.method) == ("sent", "sms")
