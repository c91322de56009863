"""The pages of the public form, rendered from Jinja2 templates and the texts files.

routes -> **pages** (form, form with errors, confirmation, status) -> HTML.

Templates (``templates/``) hold the structure only; every sentence comes
from ``texts/<code>.json`` through the ``t`` variable, so the four language
versions cannot drift apart. Errors arrive as codes (``form.FieldError``)
and become sentences here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from markupsafe import Markup, escape

from channels.webform.attachments import ACCEPTED_TYPES, megabytes
from channels.webform.form import MAX_FILES, MAX_TEXT, FieldError
from channels.webform.guard import FIELD, HONEYPOT, POW_FIELD
from channels.webform.i18n import (
    CONTACT_OPTIONS,
    DEFAULT,
    HERE,
    LANGUAGES,
    UiLanguage,
    format_date,
    products,
    texts,
)
from gateway.lib.bidi import bdi, bdi_runs
from gateway.lib.bidi import install as install_bidi

ASSETS = "/assets/webform/"


class Receipt(Protocol):
    """What the confirmation page says: a capture (``Captured``) or a complaint has it."""

    @property
    def reference(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def ack_due_at(self) -> datetime: ...
    @property
    def answer_due_at(self) -> datetime: ...


@dataclass(frozen=True)
class Notice:
    """A message about the whole submission (expired form, rate limit, our failure)."""

    code: str
    params: Mapping[str, object]


def switch_url(language: UiLanguage) -> str:
    """Where the language switcher points: ``/fr/`` remembers French, then shows ``/``."""
    return "/fr/" if language is DEFAULT else language.path


class Pages:
    def __init__(self, zone: str, max_attachment_bytes: int) -> None:
        self.zone = zone
        self.max_attachment_bytes = max_attachment_bytes
        self.env = install_bidi(
            Environment(
                loader=FileSystemLoader(HERE / "templates"),
                autoescape=select_autoescape(["html"]),
                trim_blocks=True,
                lstrip_blocks=True,
                # A missing text key fails the page test instead of rendering blank.
                undefined=StrictUndefined,
            )
        )
        self.env.filters.update(ltr=_ltr, bidi=_bidi)

    def _common(self, language: UiLanguage) -> dict[str, Any]:
        return {
            "lang": language,
            "t": texts(language.code),
            "languages": [
                {"code": item.code, "name": _name(item), "url": switch_url(item)}
                for item in LANGUAGES
            ],
            "assets": ASSETS,
            "summary": [],
            "notice": None,
        }

    def form(
        self,
        language: UiLanguage,
        token: str,
        *,
        values: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] = (),
        notice: Notice | None = None,
        reattach: Sequence[str] = (),
        pow_bits: int = 0,
    ) -> str:
        """The form, blank or sent back with what was typed, its errors and a notice.

        ``pow_bits``: the page's script solves its token's proof of work
        (``guard.work_done``) into the hidden ``pow`` field (a 429 page).

        ``reattach`` names the files the customer had chosen: a page sent
        back never holds them, so it says which ones to attach again.
        """
        words = texts(language.code)
        described = [(error.field, _sentence(words, error.code, error.params)) for error in errors]
        by_field: dict[str, list[str]] = {}
        for field_name, sentence in described:
            by_field.setdefault(field_name, []).append(sentence)
        limits = {"max_files": MAX_FILES, "max_mb": megabytes(self.max_attachment_bytes)}
        context = {
            **self._common(language),
            "title": words["page_title"],
            "action": language.action,
            "token": token,
            "token_field": FIELD,
            "pow_field": POW_FIELD,
            "pow_bits": pow_bits,
            "honeypot": HONEYPOT,
            # Not prefilled: left empty, the acknowledgement follows the language
            # the complaint is written in, not the language of the page.
            "values": values or {},
            "summary": [{"field": name, "text": sentence} for name, sentence in described],
            "field_errors": by_field,
            "notice": _sentence(words, notice.code, notice.params) if notice else None,
            "reattach": list(reattach),
            "products": [(item["code"], item["label"][language.code]) for item in products()],
            "preferred_languages": [(item.code, _name(item)) for item in LANGUAGES],
            "contact_options": [(code, words["contact_options"][code]) for code in CONTACT_OPTIONS],
            "attachments_hint": str(words["hint_attachments"]).format(**limits),
            "max_text": MAX_TEXT,
            "client": {
                "errors": words["errors"],
                "max_files": MAX_FILES,
                "max_bytes": self.max_attachment_bytes,
                "max_mb": limits["max_mb"],
                "accepted": sorted(ACCEPTED_TYPES),
                "progress": words["progress"],
            },
        }
        return self.env.get_template("form.html").render(context)

    def confirmation(self, language: UiLanguage, receipt: Receipt) -> str:
        """The reference and the three dates the edge answered with (the capture's)."""
        words = texts(language.code)
        code = language.code
        reference = receipt.reference
        context = {
            **self._common(language),
            "title": words["confirm_title"],
            "reference": reference,
            # Read out one character at a time by screen readers: "C P, 7 K 4 M, ..."
            "spoken_reference": ", ".join(" ".join(part) for part in reference.split("-")),
            "received": format_date(receipt.received_at, code, self.zone, with_time=True),
            "ack_due": format_date(receipt.ack_due_at, code, self.zone),
            "answer_due": format_date(receipt.answer_due_at, code, self.zone),
            "home": language.path,
        }
        return self.env.get_template("confirmation.html").render(context)

    def status(
        self,
        language: UiLanguage,
        token: str,
        *,
        found: Any = None,
        outcome: str | None = None,
        reference: str = "",
    ) -> str:
        """The customer's lookup page: the form, then the state and dates found, or why not.

        ``found`` is a ``status.PublicStatus``; ``outcome`` a code worded by
        ``status_outcomes`` (``not_found``, ``form_expired``, ``rate_limited``,
        ``unavailable``).
        """
        words = texts(language.code)
        code = language.code

        def date(moment: Any) -> str | None:
            return format_date(moment, code, self.zone) if moment else None

        result = None
        if found is not None:
            result = {
                "reference": found.reference,
                "state": words["status_states"][found.state],
                "state_code": found.state,
                "received": format_date(found.received_at, code, self.zone, with_time=True),
                "ack_due": date(found.ack_due_at),
                "acknowledged": date(found.acknowledged_at),
                "answer_due": date(found.answer_due_at),
                "extended_until": date(found.extended_until),
                "answered": date(found.answered_at),
                "closed": date(found.closed_at),
            }
        context = {
            **self._common(language),
            "languages": [
                {"code": item.code, "name": _name(item), "url": item.status_path}
                for item in LANGUAGES
            ],
            "title": words["status_title"],
            "action": language.status_path,
            "token": token,
            "token_field": FIELD,
            "reference": reference,
            "result": result,
            "notice": words["status_outcomes"][outcome] if outcome else None,
            "home": language.path,
        }
        return self.env.get_template("status.html").render(context)


def _right_to_left(context: Any) -> bool:
    language = context.get("lang")
    return getattr(language, "direction", "ltr") == "rtl"


@pass_context
def _ltr(context: Any, value: object) -> Markup:
    """``bdi`` on a right-to-left page; left-to-right pages keep their markup as it was."""
    return bdi(value) if _right_to_left(context) else escape(value)


@pass_context
def _bidi(context: Any, text: object) -> Markup:
    return bdi_runs(text) if _right_to_left(context) else escape(text)


def _name(language: UiLanguage) -> str:
    """A language's name in itself ("العربية", "Español"), as switchers show it."""
    return str(texts(language.code)["language_name"])


def _sentence(words: Mapping[str, Any], code: str, params: Mapping[str, object]) -> str:
    return str(words["errors"][code]).format(**params)
