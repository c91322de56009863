"""Acknowledgement texts: every template renders, says the essentials, and fits its medium."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from gateway.acks.cli import ack_group
from gateway.acks.policy import Plan
from gateway.acks.senders import Outgoing
from gateway.acks.senders.mail import SmtpRelay, Thread, compose, references_for
from gateway.acks.senders.sms import MAX_SEGMENTS, segments, sms_text
from gateway.acks.texts import (
    TEMPLATE_LANGUAGES,
    TEMPLATES,
    UNREVIEWED,
    blocks,
    render,
    unreviewed,
    variables,
)
from normalizer.assemble import assemble_message
from normalizer.contract import Channel, ComplaintMessage, Customer, Evidence, Language
from normalizer.draft import ComplaintDraft
from normalizer.pipeline import normalize

ZONE = "Africa/Casablanca"


def complaint(tag: str = "fr", message_id: str | None = "<m1@example.ma>") -> ComplaintMessage:
    draft = ComplaintDraft(
        channel=Channel.EMAIL,
        received_at=datetime(2026, 11, 26, 9, tzinfo=UTC),
        body="texte",
        customer=Customer(name="Fatima Zahra", email="fatima@example.ma"),
        language=Language(tag=tag, confidence=0.9, method="test"),
    )
    normalize(draft)
    evidence = Evidence(
        stored_at="blob:sha256:" + "0" * 64,
        sha256="0" * 64,
        size=1,
        content_type="message/rfc822",
        message_id=message_id,
    )
    return assemble_message(
        draft,
        complaint_id="c1",
        reference="CP-7K4M-9QXT",
        evidence=evidence,
        attachments=[],
        processed_at=datetime(2026, 11, 26, 9, tzinfo=UTC),
    )


def outgoing(message: ComplaintMessage) -> Outgoing:
    return Outgoing(message, Plan("email", "fatima@example.ma", ("fr",)), "<ack.x@host>")


@pytest.mark.parametrize("language", TEMPLATE_LANGUAGES)
@pytest.mark.parametrize("kind", ["subject", "email", "sms", "letter"])
def test_every_template_renders_with_the_reference(language: str, kind: str) -> None:
    text = render(kind, language, variables(complaint(), language, ZONE, 40))
    assert "CP-7K4M-9QXT" in text


@pytest.mark.parametrize("language", TEMPLATE_LANGUAGES)
def test_the_email_gives_the_answer_date_and_the_40_day_commitment(language: str) -> None:
    text = render("email", language, variables(complaint(), language, ZONE, 40))
    assert "40" in text
    assert "2027" in text  # 40 days after 26 November 2026
    assert "Fatima Zahra" not in text  # S5: the greeting names nobody (the name is free text)


@pytest.mark.parametrize("tag", ["fr", "ar", "en", "es", "zgh-Tfng", "ber-Latn", "zgh"])
def test_every_sms_fits_the_segment_limit(tag: str) -> None:
    text = sms_text(outgoing(complaint(tag)), ZONE, 40)
    assert segments(text)[1] <= MAX_SEGMENTS, text


def test_gsm7_text_is_counted_in_160_character_segments() -> None:
    assert segments("a" * 160) == ("GSM-7", 1)
    assert segments("a" * 161) == ("GSM-7", 2)
    assert segments("{" * 80) == ("GSM-7", 1)  # extension characters take two septets
    assert segments("{" * 81) == ("GSM-7", 2)


def test_arabic_text_is_counted_in_ucs2_segments() -> None:
    assert segments("ب" * 70) == ("UCS-2", 1)
    assert segments("ب" * 71) == ("UCS-2", 2)
    assert segments("ب" * 134) == ("UCS-2", 2)
    assert segments("ب" * 135) == ("UCS-2", 3)


def test_tifinagh_text_is_counted_in_ucs2_segments() -> None:
    assert segments("ⵜ" * 70) == ("UCS-2", 1)
    assert segments("ⵜ" * 71) == ("UCS-2", 2)
    assert segments("ⵜ" * 134) == ("UCS-2", 2)
    assert segments("ⵜ" * 135) == ("UCS-2", 3)
    # One Tifinagh letter (or a Latin ɣ) takes a whole GSM-7 text to UCS-2.
    assert segments("a" * 100 + "ⵣ") == ("UCS-2", 2)
    assert segments("a" * 69 + "ɣ") == ("UCS-2", 1)


@pytest.mark.parametrize("tag", ["zgh-Tfng", "ber-Latn"])
def test_a_tamazight_sms_goes_as_ucs2_with_the_reference_and_the_date_in_french_too(
    tag: str,
) -> None:
    text = sms_text(outgoing(complaint(tag)), ZONE, 40)
    assert segments(text) == ("UCS-2", 2)
    assert "CP-7K4M-9QXT" in text
    assert "Réponse au plus tard le 05/01/2027" in text


def test_tamazight_dates_are_written_in_digits() -> None:
    values = variables(complaint("zgh-Tfng"), "zgh-Tfng", ZONE, 40)
    assert (values["received"], values["answer_due"]) == ("26/11/2026", "05/01/2027")


@pytest.mark.parametrize(
    ("tag", "first", "sentence"),
    [
        ("zgh-Tfng", "zgh-Tfng", "ⵓⵟⵟⵓⵏ ⵏⵏⵙ ⴷ CP-7K4M-9QXT."),
        ("ber-Latn", "ber-Latn", "Uṭṭun nnes d CP-7K4M-9QXT."),
    ],
)
def test_a_tamazight_email_is_in_the_customers_script_with_french_below(
    tag: str, first: str, sentence: str
) -> None:
    message = complaint(tag)
    parts = blocks(message, "email", ZONE, 40)
    mail = compose(outgoing(message), parts, "contact@cashplus.ma")
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert [part.language for part in parts] == [first, "fr"]
    assert sentence in parts[0].text
    assert "40" in parts[0].text and "05/01/2027" in parts[0].text
    assert mail["Subject"].endswith(" / Votre réclamation CP-7K4M-9QXT est bien reçue")
    assert html.index(f'<div lang="{first}" dir="ltr"') < html.index('<div lang="fr" dir="ltr"')


def test_the_tifinagh_texts_are_in_tifinagh() -> None:
    text = render("letter", "zgh-Tfng", variables(complaint(), "zgh-Tfng", ZONE, 40))
    ours = text.replace("Cash Plus – Service Réclamations", "").replace("contact@cashplus.ma", "")
    letters = [char for char in ours.replace("CP-7K4M-9QXT", "") if char.isalpha()]
    assert letters and all("\u2d30" <= char <= "\u2d7f" for char in letters)


def test_only_the_tamazight_texts_are_flagged_unreviewed() -> None:
    assert unreviewed(TEMPLATE_LANGUAGES) == ["zgh-Tfng", "ber-Latn"]
    readme = (TEMPLATES / "README.md").read_text("utf-8")
    for language in TEMPLATE_LANGUAGES:
        flagged = f"| `{language}` |" in readme and "**unreviewed**" in _row(readme, language)
        assert flagged == (language in UNREVIEWED), language


def _row(readme: str, language: str) -> str:
    return next(line for line in readme.splitlines() if line.startswith(f"| `{language}` |"))


def test_the_texts_command_lists_the_unreviewed_languages() -> None:
    result = CliRunner().invoke(ack_group, ["texts"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line}
    assert lines["zgh-Tfng"][:2] == ["UNREVIEWED", "zgh-Tfng"]
    assert lines["ber-Latn"][0] == "UNREVIEWED" and "zgh" in lines["ber-Latn"]
    assert lines["fr"] == ["reviewed", "fr"]


def test_a_reply_to_an_email_threads_and_says_it_is_automatic() -> None:
    message = complaint()
    mail = compose(outgoing(message), blocks(message, "email", ZONE, 40), "contact@cashplus.ma")
    assert mail["In-Reply-To"] == mail["References"] == "<m1@example.ma>"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail.get_body(("html",)) is not None and mail.get_body(("plain",)) is not None


def test_a_reply_continues_their_references_under_our_own_subject() -> None:
    message = complaint()
    thread = Thread(references=("<root@x>", "<a@x>"))
    parts = blocks(message, "email", ZONE, 40)
    mail = compose(outgoing(message), parts, "contact@cashplus.ma", thread)
    assert mail["References"] == "<root@x> <a@x> <m1@example.ma>"
    # S5: never their subject (a stranger's text); ours, with the reference.
    assert mail["Subject"] == "Votre réclamation CP-7K4M-9QXT est bien reçue"


PHISHING = (
    "client. URGENT : votre carte est suspendue, reactivez-la sur https://cashplus-verif.example"
)


@pytest.mark.parametrize("tag", ["fr", "ary-Arab", "en", "es"])
def test_no_text_the_customer_typed_reaches_any_acknowledgement(tag: str) -> None:
    # S5: the name (200 free characters on the form) went into the greeting and To.
    message = complaint(tag).model_copy(
        update={"customer": Customer(name=PHISHING, email="victim@example.ma"), "subject": PHISHING}
    )
    mail = compose(outgoing(message), blocks(message, "email", ZONE, 40), "contact@cashplus.ma")
    sms = sms_text(outgoing(message), ZONE, 40)
    for sent in (mail.as_string(), mail.get_body(("plain",)).get_content(), sms):  # type: ignore[union-attr]
        assert "cashplus-verif" not in sent
        assert "URGENT" not in sent
    assert mail["To"] == "fatima@example.ma"


def test_a_long_references_chain_keeps_its_root_and_the_latest_ids() -> None:
    theirs = tuple(f"<{n}@x>" for n in range(30))
    chain = references_for(theirs, "<mine@x>").split()
    assert chain == ["<0@x>", *theirs[-8:], "<mine@x>"]


def test_an_acknowledgement_of_a_non_email_complaint_is_auto_generated() -> None:
    message = complaint(message_id=None)
    mail = compose(outgoing(message), blocks(message, "email", ZONE, 40), "contact@cashplus.ma")
    assert mail["In-Reply-To"] is None
    assert mail["Auto-Submitted"] == "auto-generated"


def test_the_arabic_html_part_runs_right_to_left_with_french_below() -> None:
    message = complaint("ary-Arab")
    mail = compose(outgoing(message), blocks(message, "email", ZONE, 40), "contact@cashplus.ma")
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html.index('dir="rtl"') < html.index('<div lang="fr" dir="ltr"')


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.internal:2525", ("relay.internal", 2525, False, False, None)),
        ("smtps://u:p%40ss@relay:465", ("relay", 465, True, False, "u")),
        ("smtp://u:p@relay?starttls=true", ("relay", 25, False, True, "u")),
    ],
)
def test_the_relay_url_gives_host_port_tls_and_credentials(
    url: str, expected: tuple[object, ...]
) -> None:
    relay = SmtpRelay(url, "intake.cashplus.ma")
    assert (relay.host, relay.port, relay.implicit_tls, relay.starttls, relay.user) == expected


def test_a_relay_url_of_another_scheme_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="INTAKE_SMTP_RELAY_URL"):
        SmtpRelay("http://relay:25", "intake.cashplus.ma")
