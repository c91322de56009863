"""SMS and WhatsApp acknowledgements: the twilio library against a local stand-in of Twilio's API.

The real ``twilio`` client sends the request (its base URL pointed at the
stand-in); the test checks what reached the server: the account in the
Basic auth, To/From/Body as Twilio expects them, an Arabic text within two
UCS-2 segments (Tifinagh too), WhatsApp addresses, and a refused number recorded as failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.acks.senders.sms import MAX_SEGMENTS, segments
from gateway.lib.services import Services, build_services
from gateway.store.db import writing
from gateway.store.tables import AcknowledgementRow
from normalizer.contract import Channel, Customer
from tests.peers.acks import event_kinds, other_complaint
from tests.peers.twilio_api import ACCOUNT_SID, TwilioApi, twilio_api, twilio_settings

PHONE = "+212661234567"
OUR_NUMBER = "+212520020915"
WHATSAPP_NUMBER = "+14155238886"


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with twilio_api() as stand_in:
        yield stand_in


@pytest.fixture
def services(settings: Settings, api: TwilioApi) -> Iterator[Services]:
    configured = twilio_settings(
        settings, api, twilio_phone_number=OUR_NUMBER, twilio_whatsapp_number=WHATSAPP_NUMBER
    )
    built = build_services(configured)
    try:
        yield built
    finally:
        built.close()


def test_a_phone_complaint_gets_an_sms_through_the_twilio_client(
    services: Services, api: TwilioApi
) -> None:
    complaint = other_complaint(
        services,
        Channel.PHONE,
        "Bonjour, ma carte a été bloquée au guichet de Derb Omar ce matin.",
        Customer(phone=PHONE),
    )

    row = Acknowledger(services).handle(complaint)

    [request] = api.recorded()
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.user == ACCOUNT_SID
    assert request.form["To"] == PHONE
    assert request.form["From"] == OUR_NUMBER
    assert complaint.reference in request.form["Body"]
    assert row.status == "sent"
    assert row.recipient == PHONE
    assert event_kinds(services) == ["ack.sent"]


def test_an_arabic_sms_stays_within_two_ucs2_segments(services: Services, api: TwilioApi) -> None:
    complaint = other_complaint(
        services,
        Channel.PHONE,
        "السلام عليكم، تم حجز بطاقتي في الشباك الأوتوماتيكي صباح اليوم ولم أستطع استرجاعها.",
        Customer(phone=PHONE),
    )

    Acknowledger(services).handle(complaint)

    [request] = api.recorded()
    encoding, count = segments(request.form["Body"])
    assert "توصلنا بشكايتكم" in request.form["Body"]
    assert encoding == "UCS-2"
    assert count <= MAX_SEGMENTS


def test_a_tifinagh_sms_complaint_is_answered_in_tifinagh_within_two_ucs2_segments(
    services: Services, api: TwilioApi
) -> None:
    complaint = other_complaint(
        services, Channel.SMS, "ⴰⵣⵓⵍ, ⵓⵔ ⴷ ⵍⴽⵉⵎⵏ ⵉⴷⵔⵉⵎⵏ ⵉ ⵜⵢⵢⵉ ⵢⵉⵎⵎⴰ.", Customer(phone=PHONE)
    )

    Acknowledger(services).handle(complaint)

    [request] = api.recorded()
    body = request.form["Body"]
    assert f"ⵏⵟⵟⴼ ⵜⴰⵙⵓⵜⵓⵔⵜ ⵏⵏⵓⵏ {complaint.reference}" in body
    assert segments(body) == ("UCS-2", 2)


def test_a_whatsapp_complaint_is_answered_on_whatsapp(settings: Settings, api: TwilioApi) -> None:
    template = "HX" + "e" * 32
    api.templates[template] = 3
    configured = twilio_settings(
        settings,
        api,
        twilio_phone_number=OUR_NUMBER,
        twilio_whatsapp_number=WHATSAPP_NUMBER,
        twilio_whatsapp_ack_templates=f"en={template}",
    )
    services = build_services(configured)
    try:
        complaint = other_complaint(
            services,
            Channel.WHATSAPP,
            "Hello, my wallet top-up of 300 dirhams has not arrived yet.",
            Customer(phone=PHONE),
        )
        Acknowledger(services).handle(complaint)
    finally:
        services.close()

    [request] = api.recorded()
    assert request.form["To"] == f"whatsapp:{PHONE}"
    assert request.form["From"] == f"whatsapp:{WHATSAPP_NUMBER}"
    assert request.form["ContentSid"] == template  # an approved template (test_acks_whatsapp)


def test_a_number_twilio_refuses_is_recorded_as_failed_and_not_retried(
    services: Services, api: TwilioApi
) -> None:
    api.invalid_numbers.add(PHONE)
    complaint = other_complaint(
        services, Channel.PHONE, "Mon paiement de facture a échoué.", Customer(phone=PHONE)
    )
    acknowledger = Acknowledger(services)

    first = acknowledger.handle(complaint)
    again = acknowledger.handle(complaint)  # a redelivery

    assert first.status == again.status == "failed"
    assert first.reason == "recipient_refused"
    assert len(api.recorded()) == 1
    assert event_kinds(services) == ["ack.failed"]


def test_our_own_number_never_gets_an_sms(services: Services, api: TwilioApi) -> None:
    complaint = other_complaint(
        services, Channel.SMS, "test de la ligne", Customer(phone=OUR_NUMBER)
    )

    row = Acknowledger(services).handle(complaint)

    assert row.status == "skipped"
    assert row.reason == "own_address"
    assert api.recorded() == []


@pytest.mark.parametrize("method", ["sms", "whatsapp"])
def test_a_form_complaint_with_a_foreign_number_gets_no_text_message(
    services: Services, api: TwilioApi, method: str
) -> None:
    # S4, as probed: a form post with +447400123456 and "sms" planned an SMS from our account.
    customer = Customer(phone="+447400123456", preferred_contact=method)
    complaint = other_complaint(services, Channel.WEBFORM, "Mon virement est bloqué.", customer)

    row = Acknowledger(services).handle(complaint)

    assert row.status == "skipped"
    assert row.reason == "country_not_allowed"
    assert api.recorded() == []


def test_past_the_daily_sms_budget_the_rest_wait_for_the_next_day_with_one_alarm(
    settings: Settings, api: TwilioApi, caplog: pytest.LogCaptureFixture
) -> None:
    configured = twilio_settings(
        settings, api, twilio_phone_number=OUR_NUMBER, ack_sms_max_per_day=2
    )
    services = build_services(configured)
    try:
        complaints = [
            other_complaint(
                services, Channel.PHONE, f"Ma carte est bloquée ({n}).", Customer(phone=number)
            )
            for n, number in enumerate(["+212661000001", "+212661000002", "+212661000003"])
        ]
        rows = [Acknowledger(services).handle(complaint) for complaint in complaints]
        again = Acknowledger(services).handle(complaints[2])  # a redelivery, same day

        assert [row.status for row in rows] == ["sent", "sent", "sending"]
        waiting = rows[2]
        assert waiting.reason == again.reason == "daily_budget_exhausted"
        assert waiting.method is None and waiting.retry_at is not None
        assert waiting.retry_at == services.store.acks.next_midnight()
        assert len(api.recorded()) == 2
        assert services.store.acks.budgets_used_today()["sms"] == 2  # /metrics' figure
        alarms = [r for r in caplog.records if r.levelname == "ERROR" and "budget" in r.message]
        assert len(alarms) == 1

        next_day(services, waiting.complaint_id)
        Acknowledger(services).resend_due()
    finally:
        services.close()

    assert len(api.recorded()) == 3
    assert api.recorded()[2].form["To"] == "+212661000003"


def next_day(services: Services, complaint_id: str) -> None:
    """Move today's sends to yesterday and make the waiting row due: the next day's poll."""
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with writing(services.store.engine) as session:
        session.execute(update(AcknowledgementRow).values(claimed_at=yesterday))
        session.execute(
            update(AcknowledgementRow)
            .where(AcknowledgementRow.complaint_id == complaint_id)
            .values(retry_at=datetime.now(UTC))
        )


def test_no_budget_left_at_the_last_try_before_the_deadline_is_recorded_as_failed(
    settings: Settings, api: TwilioApi
) -> None:
    configured = twilio_settings(settings, api, ack_sms_max_per_day=0)
    services = build_services(configured)
    try:
        complaint = other_complaint(
            services, Channel.PHONE, "Ma carte est bloquée.", Customer(phone=PHONE)
        )
        last_try = complaint.ack_due_at - timedelta(minutes=10)
        row = Acknowledger(services, clock=lambda: last_try).handle(complaint)
        kinds = event_kinds(services)
    finally:
        services.close()

    assert row.status == "failed" and row.reason == "daily_budget_exhausted"
    assert kinds == ["ack.failed"]  # published: staff acknowledge it by hand
    assert api.recorded() == []
