"""How a quarantined input, never parsed, is searched for a customer's phone or e-mail:
the number in any written form, form-encoded, or inside a mail's base64 part."""

from __future__ import annotations

import base64

import pytest

from gateway.store.personal_data import Subject, searchable_text
from normalizer.contact import phones_in

PHONE = "+212661234567"


@pytest.mark.parametrize(
    "text",
    [
        "appelez le 0661234567 svp",
        "tel: 06 61 23 45 67.",
        "+212 661-234567",
        "00212661234567",
        "whatsapp:+212661234567",
    ],
)
def test_a_number_in_any_written_form_is_found(text: str) -> None:
    assert PHONE in phones_in(text)


def test_another_number_is_not_hers() -> None:
    assert phones_in("0700000001 et 0661234568") == {"+212700000001", "+212661234568"}


def test_a_form_encoded_number_is_found() -> None:
    text = searchable_text(b"From=%2B212661234567&Body=salam", "application/x-www-form-urlencoded")

    assert Subject(phone=PHONE).named_in(text)


def test_a_number_only_in_a_base64_mail_part_is_found() -> None:
    mail = (
        b"From: someone@example.ma\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"rappelez-moi au 06 61 23 45 67")
    )

    assert not Subject(phone=PHONE).named_in(mail.decode())
    assert Subject(phone=PHONE).named_in(searchable_text(mail, "message/rfc822"))


def test_an_e_mail_is_found_whatever_its_case() -> None:
    text = searchable_text(
        b"From: Fatima <Fatima.Zahra@Example.MA>\r\n\r\nbonjour", "message/rfc822"
    )

    assert Subject(email="fatima.zahra@example.ma").named_in(text)
    assert not Subject(email="ali@example.ma").named_in(text)
