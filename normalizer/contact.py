"""Customer contact details: phone numbers in E.164, e-mail addresses checked.

Moroccan customers write their number in every form (0661234567,
06 61 23 45 67, +212 661-234567, 00212661234567); ``to_e164`` turns all of
them into ``+212661234567``. Numbers without a country code are read as
Moroccan.
"""

from __future__ import annotations

import re

import phonenumbers

from normalizer.contract import Customer
from normalizer.errors import InputRejected

DEFAULT_REGION = "MA"
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")


class InvalidContact(InputRejected, ValueError):
    """A phone number or e-mail address that cannot be used to reach the customer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """The number in E.164, or ``InvalidContact`` saying why not."""
    text = raw.strip()
    if text.startswith("whatsapp:"):
        text = text.removeprefix("whatsapp:")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact("phone", f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact("phone", "not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phones_in(text: str, region: str = DEFAULT_REGION) -> set[str]:
    """Every valid phone number written in ``text`` (any of the forms above), in E.164."""
    return {
        phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        for match in phonenumbers.PhoneNumberMatcher(text, region)
    }


def check_email(raw: str) -> str:
    text = raw.strip()
    if len(text) > 254 or not _EMAIL.match(text):
        raise InvalidContact("email", "not an e-mail address")
    return text


def build_customer(
    *,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    postal_address: str | None = None,
    strict: bool = True,
) -> Customer:
    """A ``Customer`` from loose input.

    ``strict`` (API, web form) raises ``InvalidContact``; otherwise (a letter,
    an e-mail signature) a detail that does not parse is left out rather than
    losing the complaint.
    """
    clean_phone: str | None = None
    clean_email: str | None = None
    try:
        clean_phone = to_e164(phone) if phone and phone.strip() else None
    except InvalidContact:
        if strict:
            raise
    try:
        clean_email = check_email(email) if email and email.strip() else None
    except InvalidContact:
        if strict:
            raise
    return Customer(
        name=(name or "").strip() or None,
        email=clean_email,
        phone=clean_phone,
        postal_address=(postal_address or "").strip() or None,
    )
