"""Whether, how and in which language a complaint is acknowledged: the policy tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.settings import load_settings
from gateway.acks.policy import AckContext, Plan, Skip, decide
from gateway.acks.texts import languages_for
from normalizer.assemble import assemble_message
from normalizer.contract import Channel, ComplaintMessage, Customer, Evidence, Language, Origin
from normalizer.draft import ComplaintDraft
from normalizer.pipeline import normalize

EVERYTHING = AckContext(
    enabled_methods=frozenset({"email", "sms", "whatsapp", "letter"}),
    own_addresses=frozenset({"contact@cashplus.ma"}),
    own_domains=frozenset({"intake.cashplus.ma"}),
    own_numbers=frozenset({"+212520020915"}),
    max_per_day=3,
)
EVIDENCE = Evidence(stored_at="blob:sha256:" + "0" * 64, sha256="0" * 64, size=1, content_type="x")


def complaint(
    channel: Channel = Channel.EMAIL,
    customer: Customer | None = None,
    *,
    tag: str = "fr",
    confidence: float = 0.9,
    follow_up_of: str | None = None,
    origin: Origin = Origin.CUSTOMER,
) -> ComplaintMessage:
    draft = ComplaintDraft(
        channel=channel,
        received_at=datetime(2026, 11, 26, 9, tzinfo=UTC),
        body="texte",
        customer=customer or Customer(email="fatima@example.ma", phone="+212661234567"),
        language=Language(tag=tag, confidence=confidence, method="test"),
        origin=origin,
    )
    normalize(draft)
    draft.follow_up_of = follow_up_of
    return assemble_message(
        draft,
        complaint_id="c1",
        reference="CP-7K4M-9QXT",
        evidence=EVIDENCE,
        attachments=[],
        processed_at=datetime(2026, 11, 26, 9, tzinfo=UTC),
    )


def nobody_yet(_recipient: str) -> int:
    return 0


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fr", ("fr",)),
        ("ar", ("ar", "fr")),
        ("ary-Arab", ("ar", "fr")),
        ("ary-Latn", ("ar", "fr")),
        ("en", ("en",)),
        ("es", ("es",)),
        ("zgh-Tfng", ("fr", "ar")),
        ("de", ("fr", "ar")),
        ("und", ("fr", "ar")),
    ],
)
def test_the_acknowledgement_language_follows_the_complaint(
    tag: str, expected: tuple[str, ...]
) -> None:
    assert languages_for(complaint(tag=tag)) == expected


def test_an_unsure_detection_gets_french_and_arabic() -> None:
    assert languages_for(complaint(tag="en", confidence=0.3)) == ("fr", "ar")


def test_the_customers_chosen_language_wins_over_the_text() -> None:
    chosen = Customer(email="a@example.ma", preferred_language="ar")
    assert languages_for(complaint(Channel.WEBFORM, chosen, tag="fr")) == ("ar", "fr")


@pytest.mark.parametrize(
    ("channel", "method"),
    [
        (Channel.EMAIL, "email"),
        (Channel.PHONE, "sms"),
        (Channel.SMS, "sms"),
        (Channel.WHATSAPP, "whatsapp"),
        (Channel.WEBFORM, "email"),
        (Channel.API, "email"),
    ],
)
def test_each_channel_is_answered_its_own_way(channel: Channel, method: str) -> None:
    decision = decide(complaint(channel), EVERYTHING, nobody_yet)
    assert isinstance(decision, Plan)
    assert decision.method == method


def test_a_letter_is_answered_by_letter_to_the_postal_address() -> None:
    sender = Customer(name="Amina", postal_address="3 rue X\nFès", email="a@example.ma")
    decision = decide(complaint(Channel.LETTER, sender), EVERYTHING, nobody_yet)
    assert decision == Plan("letter", "3 rue X\nFès", ("fr",))


def test_a_web_form_customer_who_chose_whatsapp_gets_whatsapp() -> None:
    customer = Customer(email="a@example.ma", phone="+212661234567", preferred_contact="whatsapp")
    decision = decide(complaint(Channel.WEBFORM, customer), EVERYTHING, nobody_yet)
    assert isinstance(decision, Plan)
    assert decision.method == "whatsapp"


def test_a_follow_up_gets_none() -> None:
    decision = decide(complaint(follow_up_of="CP-7K4M-9QXT"), EVERYTHING, nobody_yet)
    assert decision == Skip("follow_up", "continues CP-7K4M-9QXT")


def test_a_complaint_forwarded_by_bank_al_maghrib_is_left_to_staff() -> None:
    decision = decide(complaint(origin=Origin.BANK_AL_MAGHRIB), EVERYTHING, nobody_yet)
    assert isinstance(decision, Skip)
    assert decision.reason == "forwarded"


@pytest.mark.parametrize(
    "address",
    ["noreply@example.ma", "no-reply@x.ma", "postmaster@x.ma", "bounces+123@list.example.ma"],
)
def test_robot_addresses_get_no_email(address: str) -> None:
    decision = decide(complaint(customer=Customer(email=address)), EVERYTHING, nobody_yet)
    assert decision == Skip("robot_address", "email: robot_address")


def test_our_own_domain_gets_no_email() -> None:
    customer = Customer(email="relay@intake.cashplus.ma")
    decision = decide(complaint(customer=customer), EVERYTHING, nobody_yet)
    assert isinstance(decision, Skip)
    assert decision.reason == "own_address"


def test_a_recipient_at_the_daily_cap_is_reached_another_way() -> None:
    def capped(recipient: str) -> int:
        return 3 if "@" in recipient else 0

    decision = decide(complaint(), EVERYTHING, capped)
    assert decision == Plan("sms", "+212661234567", ("fr",))


def test_a_method_that_is_not_configured_is_passed_over() -> None:
    letters_only = AckContext(
        frozenset({"letter"}), frozenset(), frozenset(), frozenset(), max_per_day=3
    )
    decision = decide(complaint(), letters_only, nobody_yet)
    assert decision == Skip("not_configured", "email: not_configured; sms: not_configured")


def test_no_contact_at_all_says_so() -> None:
    decision = decide(complaint(customer=Customer(name="Anonyme")), EVERYTHING, nobody_yet)
    assert decision == Skip("no_contact", "no e-mail, phone or postal address")


def test_the_context_reads_what_is_configured() -> None:
    settings = load_settings(smtp_relay_url="smtp://relay:25", twilio_account_sid="AC1")
    context = AckContext.from_settings(settings)
    assert context.enabled_methods == frozenset({"email", "letter"})  # no Twilio token
    assert "contact@cashplus.ma" in context.own_addresses
