from datetime import UTC, datetime

import pytest

from normalizer.contact import InvalidContact, build_customer, to_e164
from normalizer.contract import Channel
from normalizer.draft import AttachmentDraft, ComplaintDraft
from normalizer.pipeline import PipelineContext, clean_text, normalize
from normalizer.reference import new_reference

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def draft(**overrides: object) -> ComplaintDraft:
    fields: dict[str, object] = {
        "channel": Channel.API,
        "received_at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        "body": "Bonjour, mon virement n'est pas arrivé.",
    }
    fields.update(overrides)
    return ComplaintDraft(**fields)  # type: ignore[arg-type]


def test_clean_text_removes_controls_and_blank_runs_but_keeps_arabic() -> None:
    text = "سلام\r\n\r\n\r\n\x00عندي مشكل   \x07\n"
    assert clean_text(text) == "سلام\n\nعندي مشكل"


def test_declared_language_wins_over_detection() -> None:
    result = normalize(draft(declared_language="es"))
    assert result.language is not None
    assert (result.language.tag, result.language.method) == ("es", "declared")


def test_language_is_detected_when_not_declared() -> None:
    result = normalize(draft())
    assert result.language is not None
    assert result.language.tag == "fr"


def test_reference_in_the_text_marks_a_follow_up() -> None:
    earlier = new_reference()
    result = normalize(draft(subject=f"Re: votre réclamation {earlier}"))
    assert result.follow_up_of == earlier


def test_attachment_type_comes_from_the_bytes_not_the_claim() -> None:
    result = normalize(
        draft(
            attachments=[
                AttachmentDraft(name="recu.pdf", data=PNG, declared_type="application/pdf")
            ]
        )
    )
    assert result.attachments[0].content_type == "image/png"


def test_deadlines_are_stamped_from_received_at() -> None:
    result = normalize(draft(), PipelineContext(ack_days=10, answer_days=40))
    assert result.ack_due_at is not None and result.answer_due_at is not None
    assert (result.answer_due_at - result.ack_due_at).days == 30


@pytest.mark.parametrize(
    "raw",
    ["0661234567", "06 61 23 45 67", "+212 661-234567", "00212661234567", "whatsapp:+212661234567"],
)
def test_moroccan_numbers_in_every_form_become_e164(raw: str) -> None:
    assert to_e164(raw) == "+212661234567"


def test_invalid_phone_is_refused_when_strict_and_dropped_otherwise() -> None:
    with pytest.raises(InvalidContact) as error:
        build_customer(phone="12345")
    assert error.value.field == "phone"
    assert build_customer(phone="12345", email="a@b.ma", strict=False).phone is None
