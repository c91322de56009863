"""What the customer typed: the submission, its validation, the complaint draft.

form POST -> routes (guards) -> **Submission.from_form -> validate -> build_draft**
-> ``channels.handoff.hand_off``.

Validation is a table of small checks (``CHECKS``), each returning the
errors of its fields as codes; the page turns codes into sentences in the
customer's language (``texts/<code>.json``, key ``errors``). Nothing here
knows a language.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels.webform.attachments import FileRefused, charged_to, check_file
from channels.webform.guard import HONEYPOT
from channels.webform.i18n import BY_CODE, CONTACT_OPTIONS, product_codes
from normalizer.contact import InvalidContact, check_email, to_e164
from normalizer.contract import Channel, Customer
from normalizer.draft import AttachmentDraft, ComplaintDraft
from normalizer.ocr import ScanLimits

MAX_NAME = 200
MAX_PHONE = 40
MAX_EMAIL = 254
MAX_TRANSACTION = 100
MAX_TEXT = 20_000
MAX_FILES = 5
TEXT_FIELDS = (
    "name",
    "phone",
    "email",
    "product",
    "transaction_reference",
    "text",
    "preferred_language",
    "preferred_contact",
)
# Ways of contact that need a phone number (the others need an e-mail address).
PHONE_CONTACTS = frozenset({"phone", "sms", "whatsapp"})


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    declared_type: str | None = None


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)


@dataclass
class Submission:
    values: dict[str, str]
    uploads: list[Upload] = field(default_factory=list)
    honeypot: str = ""

    @classmethod
    def from_form(cls, form: Mapping[str, Any], uploads: list[Upload]) -> Submission:
        """Text fields trimmed (``\\r\\n`` kept as typed in the text), files that were chosen."""
        values = {name: str(form.get(name) or "") for name in TEXT_FIELDS}
        values = {name: text if name == "text" else text.strip() for name, text in values.items()}
        return cls(values=values, uploads=uploads, honeypot=str(form.get(HONEYPOT) or ""))

    def get(self, name: str) -> str:
        return self.values.get(name, "")


@dataclass
class Checked:
    """The outcome of validation: errors, or what the draft needs."""

    errors: list[FieldError] = field(default_factory=list)
    phone: str | None = None
    email: str | None = None
    attachments: list[AttachmentDraft] = field(default_factory=list)


Check = Callable[[Submission, Checked, ScanLimits], None]


def _check_contact(sub: Submission, out: Checked, _limits: ScanLimits) -> None:
    phone, email = sub.get("phone"), sub.get("email")
    if not phone and not email:
        out.errors.append(FieldError("phone", "contact_missing"))
        return
    if phone:
        try:
            out.phone = to_e164(phone) if len(phone) <= MAX_PHONE else None
        except InvalidContact:
            out.phone = None
        if out.phone is None:
            out.errors.append(FieldError("phone", "phone_invalid"))
    if email:
        try:
            out.email = check_email(email) if len(email) <= MAX_EMAIL else None
        except InvalidContact:
            out.email = None
        if out.email is None:
            out.errors.append(FieldError("email", "email_invalid"))


def _check_lengths(sub: Submission, out: Checked, _limits: ScanLimits) -> None:
    if len(sub.get("name")) > MAX_NAME:
        out.errors.append(FieldError("name", "name_too_long", {"max": MAX_NAME}))
    if len(sub.get("transaction_reference")) > MAX_TRANSACTION:
        out.errors.append(
            FieldError("transaction_reference", "transaction_too_long", {"max": MAX_TRANSACTION})
        )


def _check_text(sub: Submission, out: Checked, _limits: ScanLimits) -> None:
    text = sub.get("text")
    if not text.strip():
        out.errors.append(FieldError("text", "text_missing"))
    elif len(text) > MAX_TEXT:
        out.errors.append(FieldError("text", "text_too_long", {"max": MAX_TEXT}))


def _check_choices(sub: Submission, out: Checked, _limits: ScanLimits) -> None:
    product = sub.get("product")
    if product and product not in product_codes():
        out.errors.append(FieldError("product", "product_invalid"))
    language = sub.get("preferred_language")
    if language and language not in BY_CODE:
        out.errors.append(FieldError("preferred_language", "language_invalid"))
    contact = sub.get("preferred_contact")
    if contact and contact not in CONTACT_OPTIONS:
        out.errors.append(FieldError("preferred_contact", "contact_invalid"))
    elif contact == "email" and not sub.get("email"):
        out.errors.append(FieldError("preferred_contact", "contact_needs_email"))
    elif contact in PHONE_CONTACTS and not sub.get("phone"):
        out.errors.append(FieldError("preferred_contact", "contact_needs_phone"))


def _check_files(sub: Submission, out: Checked, limits: ScanLimits) -> None:
    if len(sub.uploads) > MAX_FILES:
        out.errors.append(FieldError("attachments", "too_many_files", {"max": MAX_FILES}))
        return
    for upload in sub.uploads:
        try:
            kind = check_file(upload.name, upload.data, limits)
        except FileRefused as exc:
            out.errors.append(
                FieldError("attachments", exc.code, {"name": upload.name, **exc.params})
            )
            continue
        out.attachments.append(
            AttachmentDraft(
                name=upload.name,
                data=upload.data,
                declared_type=upload.declared_type,
                content_type=kind,
            )
        )


# In the order the page shows the fields, so the error summary reads top-down.
CHECKS: tuple[Check, ...] = (
    _check_lengths,
    _check_contact,
    _check_text,
    _check_choices,
    _check_files,
)
FIELD_ORDER = (
    "name",
    "phone",
    "email",
    "product",
    "transaction_reference",
    "text",
    "attachments",
    "preferred_language",
    "preferred_contact",
)


def validate(sub: Submission, limits: ScanLimits, client: str | None = None) -> Checked:
    """``client``: the keyed hash of the sender's address, charged for the attachment checks."""
    out = Checked()
    with charged_to(client):
        for check in CHECKS:
            check(sub, out, limits)
    out.errors.sort(key=lambda error: FIELD_ORDER.index(error.field))
    return out


def content_hash(sub: Submission) -> str:
    """What the customer sent, independent of multipart boundaries: half of the dedup key."""
    digest = hashlib.sha256()
    for name in TEXT_FIELDS:
        digest.update(sub.get(name).encode("utf-8", "surrogatepass") + b"\x00")
    for upload in sub.uploads:
        digest.update(hashlib.sha256(upload.data).digest())
    return digest.hexdigest()


def build_draft(sub: Submission, checked: Checked, received_at: datetime) -> ComplaintDraft:
    """The complaint as the form gives it; the language is left to the pipeline (the text's)."""
    customer = Customer(
        name=sub.get("name") or None,
        email=checked.email,
        phone=checked.phone,
        preferred_language=sub.get("preferred_language") or None,
        preferred_contact=sub.get("preferred_contact") or None,
    )
    return ComplaintDraft(
        channel=Channel.WEBFORM,
        received_at=received_at,
        body=sub.get("text"),
        customer=customer,
        product=sub.get("product") or None,
        transaction_reference=sub.get("transaction_reference") or None,
        attachments=checked.attachments,
    )
