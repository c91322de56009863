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
