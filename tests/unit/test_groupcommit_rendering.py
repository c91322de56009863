"""The outbox payload is rendered once: the envelope is spliced around the message's JSON.

Consumers read the bytes the relay publishes; they must be exactly what
``ComplaintEvent.wrap(message, source).model_dump_json()`` gives, whatever
the text holds (Arabic, quotes, control characters, a non-UTC time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.store.complaint_rows import event_json
from normalizer.contract import (
    Attachment,
    Channel,
    ComplaintEvent,
    ComplaintMessage,
    Customer,
    Evidence,
    Language,
    Origin,
    SecondaryLanguage,
)
from normalizer.deadlines import compute_deadlines
from normalizer.reference import new_reference

CASABLANCA_SUMMER = timezone(timedelta(hours=1))


def message(body: str, received: datetime, **extra: object) -> ComplaintMessage:
    deadlines = compute_deadlines(received)
    fields: dict[str, object] = {
        "id": "65b30ee8-1c89-464b-8edc-55477c984704",
        "reference": new_reference(),
        "channel": Channel.PHONE,
        "origin": Origin.BANK_AL_MAGHRIB,
        "received_at": received,
        "ack_due_at": deadlines.ack_due_at,
        "answer_due_at": deadlines.answer_due_at,
        "processed_at": datetime(2026, 11, 26, 6, 48, 2, 316183, tzinfo=UTC),
        "language": Language(
            tag="ary-Arab",
            confidence=0.885,
            method="mixed",
            secondary=[SecondaryLanguage(tag="fr", confidence=0.2)],
        ),
        "customer": Customer(name='Fatima "Zahra"', phone="+212661234567"),
        "body": body,
        "evidence": Evidence(
            stored_at="blob:sha256:" + "b" * 64,
            sha256="b" * 64,
            size=101,
            content_type="application/x-www-form-urlencoded",
            call_sid="CA" + "1" * 32,
            missing_media=["https://api.twilio.com/2010-04-01/Recordings/RE1"],
        ),
    }
    fields.update(extra)
    return ComplaintMessage.model_validate(fields)


CASES = {
    "darija in arabic script": message(
        "سلام، الكارطة ديالي تبلوكات ف الگيشي", datetime(2026, 11, 26, 6, 48, 2, 314961, tzinfo=UTC)
    ),
    "quotes, backslashes, controls": message(
        'il a dit "non" \\ puis\ttab\nligne \x01 \u2028 </script>',
        datetime(2026, 6, 1, 12, 0, tzinfo=CASABLANCA_SUMMER),
    ),
    "tifinagh, emoji, attachment, follow-up": message(
        "ⴰⵣⵓⵍ 👋 ma wslouch",
        datetime(2026, 3, 14, 9, 0, tzinfo=UTC),
        attachments=[
            Attachment(
                name="reçu.pdf",
                content_type="application/pdf",
                size=2048,
                sha256="c" * 64,
                stored_at="blob:sha256:" + "c" * 64,
                ocr_text="Montant : 1 500 DH",
            )
        ],
        follow_up_of=new_reference(),
        subject="Réclamation «urgente»",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_spliced_envelope_is_byte_identical_to_pydantics(case: ComplaintMessage) -> None:
    source = "urn:cashplus:complaints-intake"

    spliced = event_json(case, case.model_dump_json(), source)

    assert spliced == ComplaintEvent.wrap(case, source).model_dump_json().encode()


def test_spliced_envelope_reads_back_as_the_event() -> None:
    case = CASES["quotes, backslashes, controls"]

    spliced = event_json(case, case.model_dump_json(), "urn:cashplus:gateway-2")

    assert ComplaintEvent.model_validate_json(spliced) == ComplaintEvent.wrap(
        case, "urn:cashplus:gateway-2"
    )
