"""SMS and WhatsApp to the line: a complaint per message, a reply in the customer's language."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, QuarantineRow
from tests.peers.twilio import (
    ACCOUNT_SID,
    LINE_NUMBER,
    RunningGateway,
    TwilioWebhooks,
    running_gateway,
    sid,
    twilio_settings,
)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    with running_gateway(twilio_settings(settings)) as running:
        yield running


def message(hooks: TwilioWebhooks, sender: str, body: str, **extra: str) -> str:
    response = hooks.post(
        "/twilio/messaging",
        {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": sid("SM"),
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    (reply,) = ET.fromstring(response.content)
    assert reply.tag == "Message"
    return reply.text or ""


def count(gateway: RunningGateway, model: type) -> int:
    with reading(gateway.services.store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_whatsapp_message_is_a_whatsapp_complaint_from_the_senders_number(
    hooks: TwilioWebhooks, gateway: RunningGateway
) -> None:
    reply = message(
        hooks,
        "whatsapp:+212661234567",
        "salam, sifet flouss l khouya nhar letnin w ma wslouch, 3afak chofo liya",
        ProfileName="Fatima",
        WaId="212661234567",
    )

    gateway.settle()
    with reading(gateway.services.store.engine) as session:
        row = session.scalars(select(ComplaintRow)).one()
    complaint = gateway.services.store.complaints.get_by_reference(row.reference)
    assert complaint is not None
    assert complaint.channel == "whatsapp"
    assert complaint.customer.phone == "+212661234567"
    assert complaint.customer.name == "Fatima"
    assert complaint.language.tag == "ary-Latn"
    # Answered in Darija written in Latin letters, like the message.
    assert complaint.reference in reply
    assert "chikaya" in reply


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mi tarjeta fue retenida por el cajero automático ayer por la tarde.", "reclamación"),
        ("My transfer of 500 dirhams never arrived, please help me.", "complaint"),
        ("السلام عليكم، لم أتوصل بالحوالة التي أرسلها لي أخي منذ أسبوع", "شكايتكم"),
    ],
)
def test_reply_is_in_the_language_of_the_message(
    hooks: TwilioWebhooks, text: str, expected: str
) -> None:
    reply = message(hooks, "+212661234567", text)

    assert expected in reply


def test_message_with_neither_text_nor_media_is_quarantined_and_answered(
    hooks: TwilioWebhooks, gateway: RunningGateway
) -> None:
    reply = message(hooks, "+212661234567", "   ")

    assert "ni texte ni photo" in reply
    assert count(gateway, ComplaintRow) == 0
    assert count(gateway, QuarantineRow) == 1


def test_the_reply_comes_once_the_message_is_captured_in_its_language_with_its_reference(
    hooks: TwilioWebhooks, gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    captures = gateway.services.store.captures
    monkeypatch.setattr(captures, "claim", lambda *_args, **_kwargs: [])  # no runner yet
    reply = message(hooks, "+212661234567", "Mon transfert n'est jamais arrivé à Agadir.")
    reference = reply.split("CP-", 1)[1][:9]
    captured = captures.by_reference(f"CP-{reference}")
    assert captured is not None and captured.channel == "sms"
    assert "transfert" not in reply.lower() and "réclamation" in reply.lower()
    assert count(gateway, ComplaintRow) == 0
    monkeypatch.undo()
    captures.arrived.set()
    gateway.settle()
    complaint = gateway.services.store.complaints.get_by_reference(captured.reference)
    assert complaint is not None
    assert (complaint.id, complaint.received_at) == (captured.id, captured.received_at)
    assert complaint.language.tag == "fr"


def test_a_message_the_runner_fails_on_is_quarantined_and_replayed_with_its_reference(
    hooks: TwilioWebhooks, gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.twilio.messaging as messaging
    from gateway.ops.quarantine import replay

    real = messaging.record_message

    def broken(*_args: object, **_kwargs: object) -> None:
        raise LookupError("a bug in the message step")

    monkeypatch.setattr(messaging, "record_message", broken)
    reply = message(hooks, "+212661234567", "Salam, lflouss ma wslatch l khouya")
    reference = "CP-" + reply.split("CP-", 1)[1][:9]
    gateway.settle()
    with reading(gateway.services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
    assert item.reason_code == "normalizer_failed" and "LookupError" in item.reason
    assert count(gateway, ComplaintRow) == 0
    monkeypatch.setattr(messaging, "record_message", real)
    services = gateway.services
    result = replay(services, services.store.quarantine.get(item.id))  # type: ignore[arg-type]
    assert result.ok, result.detail
    complaint = services.store.complaints.get_by_reference(reference)
    captured = services.store.captures.by_reference(reference)
    assert complaint is not None and captured is not None
    assert (complaint.id, complaint.received_at) == (captured.id, captured.received_at)
