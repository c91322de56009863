"""parse_email on the committed fixture messages, one behaviour per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from normalizer.email import parse_email

pytestmark = pytest.mark.unit


def test_french_body_drops_signature_and_keeps_text(eml):
    parsed = parse_email(eml("fr_signature_quote.eml"))
    assert parsed.body.startswith("Bonjour,\n\nJ'ai envoyé 1 500 DH")
    assert "Amina Bennani\nTél." not in parsed.body
    assert "Tél. 06 61 00 00 00" in parsed.full_text


def test_windows_1256_base64_body_and_encoded_word_headers_are_arabic(eml):
    parsed = parse_email(eml("ar_windows1256_base64.eml"))
    assert parsed.subject == "شكاية بخصوص تحويل"
    assert parsed.from_name == "سعيد الإدريسي"
    assert "قمت بتحويل مبلغ 500 درهم" in parsed.body
    assert "?" not in parsed.body.replace("؟", "")


def test_iso_8859_6_quoted_printable_body_is_arabic(eml):
    parsed = parse_email(eml("ar_iso88596_qp.eml"))
    assert parsed.body == "مرحبا، لم أتوصل بالحوالة رقم 123456 منذ أسبوع."
    assert parsed.charset_repairs == ()


def test_emoji_split_across_encoded_words_is_joined(eml):
    parsed = parse_email(eml("ary_arabic_script.eml"))
    assert parsed.subject == "فلوس 😡"
    assert parsed.body.endswith("البارح 😡")


def test_darija_in_latin_script_is_kept_verbatim(eml):
    parsed = parse_email(eml("ary_latin_script.eml"))
    assert parsed.body.startswith("salam, bghit n3ref 3lach")


def test_spanish_reply_is_cut_at_escribio_and_mobile_footer(eml):
    parsed = parse_email(eml("es_reply.eml"))
    assert parsed.body == "Hola, sigo sin recibir el dinero. ¿Cuándo llegará?"
    assert "escribió" in parsed.full_text


def test_follow_up_exposes_thread_ids_and_reference_from_subject(eml):
    parsed = parse_email(eml("es_reply.eml"))
    assert parsed.in_reply_to == "<ack-0001@intake.cashplus.ma>"
    assert parsed.references == ("<first@fixtures.example>", "<ack-0001@intake.cashplus.ma>")
    assert parsed.references_found == ("CP-7K4M-9QXV",)


def test_reference_only_in_quoted_acknowledgement_is_still_found(eml):
    parsed = parse_email(eml("fr_outlook_followup.eml"))
    assert parsed.body == "Bonjour, toujours rien. Je joins le reçu."
    assert parsed.references_found == ("CP-7K4M-9QXV",)


def test_english_original_message_block_is_stripped(eml):
    parsed = parse_email(eml("en_outlook_reply.eml"))
    assert parsed.body == "Hello, the transfer is still missing. Please call me back."


def test_html_only_mail_becomes_readable_text_without_the_quote(eml):
    parsed = parse_email(eml("html_only_gmail.eml"))
    assert parsed.body_source == "text/html"
    assert parsed.body.splitlines() == [
        "السلام عليكم، المبلغ لم يصل بعد !",
        "Montant : 700 DH",
        "Agence : Casa Maârif",
        "- Date : 01/06/2024",
        "- Réf. transfert : 998877",
    ]
    assert "Nous avons bien reçu votre demande." in parsed.full_text
    assert "track()" not in parsed.full_text


def test_plain_alternative_wins_and_every_image_and_pdf_is_listed(eml):
    parsed = parse_email(eml("alternative_related_attachments.eml"))
    assert parsed.body_source == "text/plain"
    names = {item.filename: item for item in parsed.attachments}
    assert set(names) == {"capture.png", "recu.jpg", "releve.doc"}
    assert names["capture.png"].content_id == "capture@x"
    assert names["releve.doc"].declared_type == "application/msword"
    assert names["releve.doc"].sniffed_type == "application/pdf"
    assert all(item.needs_ocr for item in parsed.attachments)


def test_outlook_auto_reply_is_classified(eml):
    assert parse_email(eml("autoreply_outlook.eml")).auto_reply == "Auto-Submitted: auto-replied"


def test_out_of_office_subject_alone_is_classified(eml):
    assert parse_email(eml("autoreply_subject_only.eml")).auto_reply == "subject: Out of Office"


def test_bounce_keeps_its_delivery_status_as_an_attachment(eml):
    parsed = parse_email(eml("bounce_report.eml"))
    assert parsed.auto_reply is not None
    status = [
        item for item in parsed.attachments if item.declared_type == "message/delivery-status"
    ]
    assert b"Status: 5.1.1" in status[0].data


def test_bank_al_maghrib_forward_puts_inner_mail_in_body(eml):
    parsed = parse_email(eml("forward_bank_al_maghrib.eml"))
    # Not authenticated (no trusted Authentication-Results, no DKIM): a claim only (S12).
    assert (parsed.claimed_origin, parsed.origin) == ("bank_al_maghrib", "customer")
    assert parsed.is_forward
    assert "لم تقم شركة كاش بلوس بإرجاع المبلغ رغم شكايتي." in parsed.body
    assert "From: مريم <meriem@example.ma>" in parsed.body
    assert [item.filename for item in parsed.attachments] == ["وصل.png"]


def test_inline_forward_is_not_stripped(eml):
    parsed = parse_email(eml("forward_inline_text.eml"))
    assert parsed.is_forward
    assert "Le transfert de 2 000 DH est bloqué depuis 3 jours." in parsed.body


def test_arabic_declared_us_ascii_is_repaired_and_noted(eml):
    parsed = parse_email(eml("wrong_charset_ascii.eml"))
    assert parsed.body == "السلام عليكم، لم أتوصل بالمبلغ المحول من طرف أخي."
    assert parsed.charset_repairs == ("part 1: declared us-ascii, decoded as windows-1256",)


def test_smtputf8_headers_and_idn_sender_are_decoded(eml):
    parsed = parse_email(eml("undeclared_smtputf8.eml"))
    assert parsed.from_name == "محمد العلوي"
    assert parsed.from_address == "محمد@مثال.المغرب"
    assert parsed.subject == "Réclamation — virement bloqué"
    assert "bloqué à l'agence" in parsed.body


def test_minus_zero_zone_date_is_read_as_utc(eml):
    parsed = parse_email(eml("undeclared_smtputf8.eml"))
    assert parsed.date == datetime(2024, 6, 3, 10, 15, tzinfo=UTC)


def test_date_keeps_its_offset(eml):
    parsed = parse_email(eml("fr_signature_quote.eml"))
    assert parsed.date == datetime(2024, 6, 3, 10, 15, tzinfo=timezone(timedelta(hours=1)))


def test_no_reply_forwarder_gives_reply_to_as_customer(eml):
    parsed = parse_email(eml("noreply_webform.eml"))
    assert parsed.from_address == "no-reply@forms.example.ma"
    assert (parsed.customer_name, parsed.customer_address) == ("Hind El Idrissi", "hind@example.ma")


def test_attachment_names_lose_paths_and_bidi_overrides(eml):
    parsed = parse_email(eml("attachment_names.eml"))
    first, second = parsed.attachments
    assert first.filename == "gpj.exe"
    assert first.declared_type == "application/pdf"
    assert first.sniffed_type != "application/pdf"
    assert not first.needs_ocr
    assert second.filename == "ملاحظة.txt"


def test_useful_headers_are_decoded(eml):
    parsed = parse_email(eml("ar_windows1256_base64.eml"))
    assert parsed.headers["Subject"] == "شكاية بخصوص تحويل"
    assert parsed.headers["Message-ID"] == "<ar-1256@fixtures.example>"


def test_empty_plain_alternative_falls_back_to_html():
    raw = (
        b"From: a@example.ma\r\nSubject: x\r\n"
        b"Content-Type: multipart/alternative; boundary=A\r\n\r\n"
        b"--A\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + "<p>مرحبا</p>\r\n".encode()
    )
    parsed = parse_email(raw)
    assert (parsed.body, parsed.body_source) == ("مرحبا", "text/html")


def test_null_envelope_sender_marks_a_bounce(eml):
    parsed = parse_email(eml("fr_signature_quote.eml"), envelope_sender="")
    assert parsed.auto_reply == "null return path <>"
