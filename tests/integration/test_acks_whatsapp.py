"""WhatsApp acknowledgements through Twilio's Content API, and their fallback chain.

The real ``twilio`` client sends to the local stand-in of Twilio's API
(``tests/peers/twilio_api.py``), which checks templates as Twilio does and
answers its refusals (HTTP 400, Twilio's JSON error body). A WhatsApp
acknowledgement is an approved template (``ContentSid`` + ``ContentVariables``);
a refusal, or a language without a template, falls back to SMS, then to
e-mail through a real SMTP relay (aiosmtpd), then to the staff list (failed,
published).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.lib.services import Services, build_services
from normalizer.contract import Channel, Customer
from tests.peers.acks import event_kinds, other_complaint
from tests.peers.smtp_capture import SmtpCapture, smtp_capture
from tests.peers.twilio_api import TwilioApi, twilio_api, twilio_settings

PHONE = "+212661234567"
EMAIL = "client.whatsapp@example.org"
OUR_NUMBER = "+212520020915"
WHATSAPP_NUMBER = "+14155238886"
FRENCH_TEMPLATE = "HX" + "f" * 32
ARABIC_TEMPLATE = "HX" + "a" * 32
FRENCH = "Bonjour, ma recharge de 200 dirhams n'est pas arrivée sur mon compte."


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with twilio_api() as stand_in:
        stand_in.templates.update({FRENCH_TEMPLATE: 3, ARABIC_TEMPLATE: 3})
        yield stand_in


@pytest.fixture
def relay() -> Iterator[SmtpCapture]:
    with smtp_capture() as capture:
        yield capture


def line_settings(
    settings: Settings, api: TwilioApi, relay: SmtpCapture, **more: object
) -> Settings:
    """The line's numbers, the French template, the relay: the stand-in's peers."""
    return twilio_settings(
        settings,
        api,
        twilio_phone_number=OUR_NUMBER,
        twilio_whatsapp_number=WHATSAPP_NUMBER,
        twilio_whatsapp_ack_templates=f"fr={FRENCH_TEMPLATE}",
        smtp_relay_url=SecretStr(relay.url),
        **more,
    )


@pytest.fixture
def services(settings: Settings, api: TwilioApi, relay: SmtpCapture) -> Iterator[Services]:
    built = build_services(line_settings(settings, api, relay))
    try:
        yield built
    finally:
        built.close()


def test_a_whatsapp_acknowledgement_is_the_approved_template_with_its_variables(
    services: Services, api: TwilioApi
) -> None:
    complaint = other_complaint(services, Channel.WHATSAPP, FRENCH, Customer(phone=PHONE))

    row = Acknowledger(services).handle(complaint)

    [request] = api.recorded()
    assert request.form["To"] == f"whatsapp:{PHONE}"
    assert request.form["From"] == f"whatsapp:{WHATSAPP_NUMBER}"
    assert request.form["ContentSid"] == FRENCH_TEMPLATE
    assert "Body" not in request.form  # a template send carries no free-form text
    variables = json.loads(request.form["ContentVariables"])
    assert variables["1"] == complaint.reference
    assert str(complaint.answer_due_at.year) in variables["3"]
    assert row.status == "sent" and row.method == "whatsapp"


def test_outside_the_24_hour_window_63016_falls_back_to_sms(
    services: Services, api: TwilioApi
) -> None:
    api.refusals[FRENCH_TEMPLATE] = 63016
    complaint = other_complaint(services, Channel.WHATSAPP, FRENCH, Customer(phone=PHONE))

    row = Acknowledger(services).handle(complaint)

    whatsapp, sms = api.recorded()
    assert whatsapp.form["ContentSid"] == FRENCH_TEMPLATE and whatsapp.code == 63016
    assert sms.form["To"] == PHONE and sms.form["From"] == OUR_NUMBER
    assert complaint.reference in sms.form["Body"]
    assert row.status == "sent" and row.method == "sms"
    assert event_kinds(services) == ["ack.sent"]


def test_the_fallback_does_not_count_its_own_acknowledgement_against_the_daily_cap(
    settings: Settings, api: TwilioApi, relay: SmtpCapture
) -> None:
    # A cap of one a day per customer: the WhatsApp try being replaced by an SMS is
    # still that one acknowledgement, not a second one over the cap.
    services = build_services(line_settings(settings, api, relay, ack_max_per_recipient_per_day=1))
    try:
        api.refusals[FRENCH_TEMPLATE] = 63016
        complaint = other_complaint(services, Channel.WHATSAPP, FRENCH, Customer(phone=PHONE))

        row = Acknowledger(services).handle(complaint)

        assert (row.status, row.method) == ("sent", "sms")
        assert [request.code for request in api.recorded()] == [63016, None]
    finally:
        services.close()


def test_with_the_email_budget_spent_the_fallback_waits_for_the_next_day(
    settings: Settings, api: TwilioApi, relay: SmtpCapture
) -> None:
    services = build_services(line_settings(settings, api, relay, ack_email_max_per_day=0))
    try:
        # WhatsApp and SMS refused for good; e-mail is next, but today's budget is spent.
        api.refusals[FRENCH_TEMPLATE] = 63016
        api.invalid_numbers.add(PHONE)
        customer = Customer(phone=PHONE, email=EMAIL)
        complaint = other_complaint(services, Channel.WHATSAPP, FRENCH, customer)

        Acknowledger(services).handle(complaint)

        row = services.store.acks.get(complaint.id)
        assert row is not None and row.status != "failed"
        assert row.reason == "daily_budget_exhausted"
        assert row.retry_at is not None and row.retry_at > complaint.received_at
        assert "ack.failed" not in event_kinds(services)
    finally:
        services.close()


def test_a_language_without_a_template_falls_back_without_asking_twilio_for_whatsapp(
    services: Services, api: TwilioApi
) -> None:
    arabic = "السلام عليكم، لم تصل الحوالة التي أرسلتها أمس إلى أخي في فاس."
    complaint = other_complaint(services, Channel.WHATSAPP, arabic, Customer(phone=PHONE))

    row = Acknowledger(services).handle(complaint)

    [sms] = api.recorded()  # only fr has a template here
    assert sms.form["To"] == PHONE
    assert "ContentSid" not in sms.form
    assert row.method == "sms" and row.status == "sent"


def test_template_refused_and_sms_refused_fall_back_to_email_through_the_relay(
    services: Services, api: TwilioApi, relay: SmtpCapture
) -> None:
    api.refusals[FRENCH_TEMPLATE] = 63028
    api.invalid_numbers.add(PHONE)  # the SMS is refused for good too (21211)
    complaint = other_complaint(
        services, Channel.WHATSAPP, FRENCH, Customer(phone=PHONE, email=EMAIL)
    )

    row = Acknowledger(services).handle(complaint)

    assert [(r.form.get("ContentSid", "sms"), r.code) for r in api.recorded()] == [
        (FRENCH_TEMPLATE, 63028),
        ("sms", 21211),
    ]
    [mail] = relay.messages()
    assert mail.rcpt_tos == [EMAIL]
    assert complaint.reference in mail.message["Subject"]
    assert row.method == "email" and row.status == "sent"


def test_with_no_way_left_the_acknowledgement_fails_for_the_staff_list(
    services: Services, api: TwilioApi
) -> None:
    api.refusals[FRENCH_TEMPLATE] = 63016
    api.invalid_numbers.add(PHONE)
    complaint = other_complaint(services, Channel.WHATSAPP, FRENCH, Customer(phone=PHONE))

    row = Acknowledger(services).handle(complaint)

    assert row.status == "failed"
    assert row.reason == "recipient_refused"  # the last method's refusal
    assert event_kinds(services) == ["ack.failed"]
    [overdue] = services.store.acks.overdue(days=0)  # `intake ack report` lists it
    assert overdue.reference == complaint.reference and overdue.status == "failed"
