"""Triage's short-message rules (thanks, opt-out, empty) and the pipeline step that applies them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from normalizer.contract import Channel
from normalizer.draft import AttachmentDraft, ComplaintDraft
from normalizer.pipeline import normalize
from normalizer.triage import COMPLAINT, TriageKind, TriageSignal, classify_text, decide

RECEIVED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Merci beaucoup !",
        "merciiii",
        "Thank you very much",
        "Gracias",
        "شكرا جزيلا",
        "شكراً بزاف",  # Darija, Arabic script
        "الله يبارك فيك",
        "chokran bzaf",  # Darija, Latin script
        "lah ybarek fik a khoya",
        "baraka allah fik",
        "tanmirt",  # Tamazight, Latin
        "ⵜⴰⵏⵎⵎⵉⵔⵜ",  # Tamazight, Tifinagh
    ],
)
def test_a_short_thank_you_in_any_of_our_languages_is_thanks(text: str) -> None:
    assert classify_text(text).kind is TriageKind.THANKS


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "Stop merci",
        "ARRÊT",
        "arret svp",
        "UNSUBSCRIBE",
        "Baja",
        "وقف",
        "اوقف الرسائل",
        "بركا",  # Darija, Arabic script: "enough"
        "baraka",  # Darija, Latin script
        "7bes les sms",
    ],
)
def test_a_short_stop_in_any_of_our_languages_is_an_opt_out(text: str) -> None:
    assert classify_text(text).kind is TriageKind.OPT_OUT


@pytest.mark.parametrize("text", ["", "   ", "?!", "🙂🙂", "Bonjour", "salam", "السلام عليكم"])
def test_no_words_or_a_greeting_alone_is_empty(text: str) -> None:
    assert classify_text(text).kind is TriageKind.EMPTY


@pytest.mark.parametrize(
    "text",
    [
        "Merci mais je n'ai toujours pas reçu mon argent",
        "chokran walakin flousi ma wslouch",  # thanks, but my money did not arrive
        "شكرا لكن الفلوس ما وصلاتش",
        "stop prélevez pas mon compte",
        "baraka men had l'mochkil, bghit flousi",
        "salam bghit n3ref 3lach flousi ma wslouch",
        "merci " * 20,  # short words, too many of them
    ],
)
def test_anything_more_than_a_courtesy_is_a_complaint(text: str) -> None:
    assert classify_text(text).kind is TriageKind.COMPLAINT


def test_a_long_message_containing_merci_is_a_complaint() -> None:
    text = (
        "Bonjour, merci de votre réponse. J'ai envoyé 2000 dirhams à mon frère le 3 "
        "décembre et il n'a rien reçu. Merci de vérifier."
    )
    assert classify_text(text).kind is TriageKind.COMPLAINT


def test_the_spam_filter_signal_wins_over_the_text_and_phishing_over_spam() -> None:
    signals = (
        TriageSignal(TriageKind.SPAM, "spamd", "spamd score 12"),
        TriageSignal(TriageKind.PHISHING, "spamd", "spamd score 12: URI_PHISH"),
    )
    verdict = decide("Merci", signals=signals)
    assert verdict.kind is TriageKind.PHISHING
    assert verdict.method == "filter"


@pytest.mark.parametrize(
    "context", ["forwarded by bank_al_maghrib", "follow-up of CP-7K4M-9QXT", "a forwarded message"]
)
def test_a_filter_verdict_does_not_decide_for_an_input_about_a_customer(context: str) -> None:
    # A customer forwarding the phishing mail that robbed them is complaining.
    signals = (TriageSignal(TriageKind.PHISHING, "spamd", "spamd score 9: URI_PHISH"),)
    verdict = decide("J'ai perdu 2000 DH", signals=signals, about_a_customer=context)
    assert verdict.kind is TriageKind.COMPLAINT
    assert verdict.reasons == (f"{context}; spamd score 9: URI_PHISH",)


@pytest.mark.parametrize(
    "text",
    [
        "stop les envois",  # an "envoi" is a money transfer: stop the transfer
        "Arret des envois",
        "stop envoi svp",
        "Arrêtez tout !",
        "cancel please",
        "cancelar por favor",
        "الغاء",
        "annuler",
    ],
)
def test_a_stop_or_cancel_about_a_transfer_is_a_complaint(text: str) -> None:
    assert classify_text(text).kind is TriageKind.COMPLAINT


@pytest.mark.parametrize("text", ["Allah", "الله", "allah !!"])
def test_an_exclamation_of_god_alone_is_not_thanks(text: str) -> None:
    assert classify_text(text).kind is TriageKind.COMPLAINT


def test_a_blessing_is_still_thanks() -> None:
    assert classify_text("baraka allah fik").kind is TriageKind.THANKS
    assert classify_text("الله يبارك فيك").kind is TriageKind.THANKS


def test_media_announced_but_not_yet_fetched_count_as_attachments() -> None:
    for body in ("", "merci"):
        draft = _draft(Channel.WHATSAPP, body)
        draft.announced_media = 1
        assert normalize(draft).triage == COMPLAINT


def test_the_pipeline_keeps_a_forwarded_phishing_mail_a_complaint() -> None:
    draft = _draft(Channel.EMAIL, "Regardez ce mail, j'ai perdu 2000 DH")
    draft.forwarded = True
    draft.triage_signals = (TriageSignal(TriageKind.PHISHING, "spamd", "spamd score 9"),)
    verdict = normalize(draft).triage
    assert verdict is not None and verdict.kind is TriageKind.COMPLAINT


def test_a_courtesy_with_an_attachment_is_a_complaint() -> None:
    assert decide("merci", has_attachments=True).kind is TriageKind.COMPLAINT


def _draft(channel: Channel, body: str, *, attachments: int = 0) -> ComplaintDraft:
    return ComplaintDraft(
        channel=channel,
        received_at=RECEIVED,
        body=body,
        attachments=[
            AttachmentDraft(name="a.jpg", data=b"\xff\xd8\xff") for _ in range(attachments)
        ],
    )


def test_the_pipeline_triages_an_sms_and_still_stamps_deadlines_from_receipt() -> None:
    draft = normalize(_draft(Channel.SMS, "STOP"))
    assert draft.triage is not None and draft.triage.kind is TriageKind.OPT_OUT
    assert draft.ack_due_at is not None and draft.ack_due_at > RECEIVED


def test_the_pipeline_keeps_a_web_form_courtesy_a_complaint() -> None:
    # Someone who fills in the complaint form means a complaint.
    draft = normalize(_draft(Channel.WEBFORM, "merci"))
    assert draft.triage is not None and draft.triage.kind is TriageKind.COMPLAINT
    assert draft.triage.method == "default"
