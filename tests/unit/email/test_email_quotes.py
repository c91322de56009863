"""Quoted replies and signatures are removed; the customer's words stay."""

from __future__ import annotations

import pytest

from normalizer.email.quotes import clean_body, normalize_whitespace, strip_quotes

pytestmark = pytest.mark.unit


def test_french_attribution_wrapped_over_two_lines_starts_the_quote():
    text = (
        "Toujours rien reçu.\n\nLe lun. 3 juin 2024 à 10:00, Cash Plus <contact@cashplus.ma> a\n"
        "écrit :\n> Bonjour\n"
    )
    assert clean_body(text) == "Toujours rien reçu."


def test_arabic_attribution_with_bidi_marks_starts_the_quote():
    text = (
        "شكرا لكم\nلم أتوصل بعد بالمبلغ\n\n"
        "\u202bفي الاثنين، 3 يونيو 2024، كتب Cash Plus <contact@cashplus.ma>:\u202c\n> مرحبا\n"
    )
    assert clean_body(text) == "شكرا لكم\nلم أتوصل بعد بالمبلغ"


def test_english_on_wrote_starts_the_quote():
    text = (
        "Still waiting.\n\n"
        "On Mon, 3 Jun 2024 at 10:00, Cash Plus <contact@cashplus.ma> wrote:\n> Hi\n"
    )
    assert clean_body(text) == "Still waiting."


def test_outlook_french_header_block_starts_the_quote():
    text = (
        "Merci.\n\nDe : Cash Plus <contact@cashplus.ma>\nEnvoyé : lundi 3 juin 2024\n"
        "À : moi\nObjet : Accusé\n\nTexte de Cash Plus\n"
    )
    assert clean_body(text) == "Merci."


def test_arabic_outlook_header_block_starts_the_quote():
    text = "شكرا\n\nمن: Cash Plus\nتم الإرسال: الاثنين\nإلى: أنا\nالموضوع: إشعار\n\nنص\n"
    assert clean_body(text) == "شكرا"


def test_a_single_from_line_in_the_text_is_not_a_header_block():
    text = "From: my account in Rabat\nI sent 300 DH and nothing arrived."
    assert clean_body(text) == text


def test_customer_sentence_with_a_ecrit_is_not_an_attribution():
    text = "Le transfert n'est pas arrivé.\nMon frère m'a écrit : rien reçu."
    assert clean_body(text) == text


def test_customer_arabic_sentence_with_kataba_is_kept():
    text = "كتب لي الموظف:\nانتظر أسبوعا"
    assert clean_body(text) == text


def test_interleaved_quotes_drop_only_quoted_lines():
    assert strip_quotes("> question ?\nma réponse\n> autre\nsuite") == "ma réponse\nsuite"


def test_reply_below_the_quote_keeps_the_text_below():
    text = "On Mon, 3 Jun 2024, Cash Plus <c@cashplus.ma> wrote:\n> Hi\n\nNothing yet."
    assert clean_body(text) == "Nothing yet."


def test_text_that_is_only_a_quote_is_kept_whole():
    assert clean_body("> tout est cité") == "> tout est cité"


def test_signature_separator_removes_the_signature():
    assert clean_body("Merci\n-- \nAmina\n0661") == "Merci"


def test_long_tail_after_double_dash_is_not_a_signature():
    text = "Intro\n--\n" + "\n".join(f"ligne {n}" for n in range(20))
    assert clean_body(text) == text


def test_mobile_footer_is_removed():
    assert clean_body("Merci\n\nEnvoyé de mon iPhone") == "Merci"


def test_whitespace_is_normalized_and_arabic_untouched():
    raw = "  \r\nسلام  \r\n\r\n\r\n\r\nbye\x00\r\n"
    assert normalize_whitespace(raw) == "سلام\n\nbye"
