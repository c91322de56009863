"""Validation of the public form and the complaint draft it makes (no file checks here)."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.webform.form import MAX_TEXT, Submission, build_draft, content_hash, validate
from normalizer.contract import Channel
from normalizer.ocr import ScanLimits

LIMITS = ScanLimits()


def submission(**values: str) -> Submission:
    base = {"phone": "0661234567", "text": "Ma carte est bloquée."}
    base.update(values)
    return Submission.from_form(base, [])


def codes(sub: Submission) -> list[tuple[str, str]]:
    return [(error.field, error.code) for error in validate(sub, LIMITS).errors]


def test_a_complete_form_has_no_errors() -> None:
    assert codes(submission()) == []


def test_no_phone_and_no_email_is_one_error_on_the_contact() -> None:
    assert codes(submission(phone="")) == [("phone", "contact_missing")]


def test_a_bad_phone_and_a_bad_email_are_both_reported() -> None:
    assert codes(submission(phone="12", email="fatima@")) == [
        ("phone", "phone_invalid"),
        ("email", "email_invalid"),
    ]


def test_an_empty_or_blank_text_is_refused() -> None:
    assert codes(submission(text="  \n ")) == [("text", "text_missing")]


def test_a_text_over_the_limit_is_refused() -> None:
    assert codes(submission(text="a" * (MAX_TEXT + 1))) == [("text", "text_too_long")]


def test_an_unknown_product_is_refused() -> None:
    assert codes(submission(product="crypto")) == [("product", "product_invalid")]


def test_email_contact_without_an_address_is_refused() -> None:
    assert codes(submission(preferred_contact="email")) == [
        ("preferred_contact", "contact_needs_email")
    ]


def test_whatsapp_contact_without_a_phone_is_refused() -> None:
    sub = submission(phone="", email="a@example.ma", preferred_contact="whatsapp")
    assert codes(sub) == [("preferred_contact", "contact_needs_phone")]


def test_errors_are_listed_in_the_order_of_the_page() -> None:
    sub = submission(phone="", text="", product="x", name="n" * 300)
    assert [field for field, _code in codes(sub)] == ["name", "phone", "product", "text"]


def test_the_draft_carries_the_customers_choices_and_normalized_contact() -> None:
    sub = submission(
        name=" Fatima ", email="F@Example.ma", preferred_language="ar", preferred_contact="sms"
    )
    checked = validate(sub, LIMITS)
    draft = build_draft(sub, checked, datetime(2026, 11, 26, 10, tzinfo=UTC))

    assert draft.channel is Channel.WEBFORM
    assert draft.customer.phone == "+212661234567"
    assert draft.customer.name == "Fatima"
    assert draft.customer.preferred_language == "ar"
    assert draft.customer.preferred_contact == "sms"
    assert draft.declared_language is None  # the language of the text decides


def test_the_content_hash_ignores_nothing_the_customer_typed() -> None:
    assert content_hash(submission()) == content_hash(submission())
    assert content_hash(submission()) != content_hash(submission(text="Autre chose."))
