"""Whether, how and in which language a complaint is acknowledged: the policy tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from config.settings import load_settings
from gateway.acks.policy import AckContext, Plan, Skip, decide, sender_authentication
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
    authentication: str | None = "pass",
) -> ComplaintMessage:
    """A complaint; an e-mail one carries the e-mail channel's verdict ``authentication``."""
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
    message = assemble_message(
        draft,
        complaint_id="c1",
        reference="CP-7K4M-9QXT",
        evidence=EVIDENCE,
        attachments=[],
        processed_at=datetime(2026, 11, 26, 9, tzinfo=UTC),
    )
    if channel is Channel.EMAIL and authentication is not None:
        return with_authentication(message, authentication)
    return message


def with_authentication(message: ComplaintMessage, result: str) -> ComplaintMessage:
    """The complaint with the e-mail channel's ``details["authentication"]`` verdict."""
    details = dict(getattr(message, "details", None) or {})
    details["authentication"] = {"result": result, "method": "dkim", "domain": "example.ma"}
    return message.model_copy(update={"details": details})


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
        ("zgh-Tfng", ("zgh-Tfng", "fr")),
        ("ber-Latn", ("ber-Latn", "fr")),
        ("zgh", ("ber-Latn", "fr")),  # a call: no script, Latin like the phone's SMS
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


def test_a_tamazight_text_detected_unsure_gets_french_and_arabic() -> None:
    assert languages_for(complaint(tag="ber-Latn", confidence=0.3)) == ("fr", "ar")


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


def budgets_spent(*names: str) -> Callable[[str], bool]:
    def left(name: str) -> bool:
        return name not in names

    return left


WITH_BUDGETS = replace(EVERYTHING, budgets={"sms": 500, "email": 2000})


@pytest.mark.parametrize("result", ["fail", "none"])
def test_an_email_whose_sender_is_not_authenticated_is_left_to_staff(result: str) -> None:
    # S5: a forged From would get our genuine, DKIM-signed reply (backscatter, phishing).
    message = complaint(authentication=result)
    decision = decide(message, EVERYTHING, nobody_yet)
    assert isinstance(decision, Skip)
    assert decision.reason == "sender_not_authenticated"
    assert "staff" in decision.detail


def test_an_email_without_any_verdict_counts_as_not_authenticated() -> None:
    message = complaint(authentication=None)
    assert sender_authentication(message) == "none"
    decision = decide(message, EVERYTHING, nobody_yet)
    assert isinstance(decision, Skip) and decision.reason == "sender_not_authenticated"


def test_an_authenticated_email_is_answered_by_email() -> None:
    decision = decide(complaint(authentication="pass"), EVERYTHING, nobody_yet)
    assert decision == Plan("email", "fatima@example.ma", ("fr",))


@pytest.mark.parametrize(
    "number", ["+447400123456", "+33612345678", "+882345678901", "+2250707123456"]
)
def test_an_sms_to_a_number_outside_the_allowed_countries_is_not_sent(number: str) -> None:
    # S4: the review's probe: a form post with a UK number and "sms" planned an SMS.
    customer = Customer(phone=number, preferred_contact="sms")
    decision = decide(complaint(Channel.WEBFORM, customer), EVERYTHING, nobody_yet)
    assert decision == Skip("country_not_allowed", "sms: country_not_allowed")


def test_a_foreign_number_falls_back_to_email_when_there_is_one() -> None:
    customer = Customer(phone="+447400123456", email="a@example.ma", preferred_contact="whatsapp")
    decision = decide(complaint(Channel.WEBFORM, customer), EVERYTHING, nobody_yet)
    assert decision == Plan("email", "a@example.ma", ("fr",))


def test_a_moroccan_number_gets_its_sms_and_the_allowed_countries_are_a_setting() -> None:
    customer = Customer(phone="+33612345678", preferred_contact="sms")
    message = complaint(Channel.WEBFORM, customer)
    with_france = replace(EVERYTHING, sms_countries=frozenset({"MA", "FR"}))
    assert decide(message, with_france, nobody_yet) == Plan("sms", "+33612345678", ("fr",))
    moroccan = complaint(Channel.PHONE, Customer(phone="+212661234567"))
    assert decide(moroccan, EVERYTHING, nobody_yet) == Plan("sms", "+212661234567", ("fr",))


def test_a_spent_sms_budget_falls_back_to_email() -> None:
    customer = Customer(phone="+212661234567", email="a@example.ma", preferred_contact="sms")
    message = complaint(Channel.WEBFORM, customer)
    decision = decide(message, WITH_BUDGETS, nobody_yet, budgets_spent("sms"))
    assert decision == Plan("email", "a@example.ma", ("fr",))


def test_a_spent_budget_with_no_other_way_says_wait_for_it() -> None:
    message = complaint(Channel.PHONE, Customer(phone="+212661234567"))
    decision = decide(message, WITH_BUDGETS, nobody_yet, budgets_spent("sms"))
    assert decision == Skip("daily_budget_exhausted", "sms: daily_budget_exhausted")


def test_a_spent_email_budget_counts_too() -> None:
    message = complaint(Channel.WEBFORM, Customer(email="a@example.ma"))
    decision = decide(message, WITH_BUDGETS, nobody_yet, budgets_spent("email"))
    assert decision == Skip("daily_budget_exhausted", "email: daily_budget_exhausted")


def test_the_context_reads_the_countries_and_budgets() -> None:
    settings = load_settings(
        ack_sms_countries="ma, fr", ack_sms_max_per_day=7, ack_email_max_per_day=9
    )
    context = AckContext.from_settings(settings)
    assert context.sms_countries == frozenset({"MA", "FR"})
    assert context.budgets == {"sms": 7, "email": 9}
    assert AckContext.from_settings(load_settings()).sms_countries == frozenset({"MA"})
