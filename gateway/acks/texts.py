"""What an acknowledgement says, in which languages: templates per language, one table.

complaint -> **languages_for** (table) -> **render** (templates/<lang>/*.txt)
-> e-mail, SMS or letter composition.

The language comes from the customer's explicit choice (web form) when
there is one, otherwise from the complaint's text: Arabic for ``ar`` and
Darija (with French below, as many Moroccan customers read both), French
for ``fr``, English, Spanish; French and Arabic when the text is of another
language or the detection is unsure. The texts themselves are files per
language under ``templates/``, reviewed for tone; no sentence lives in code.

In a right-to-left language, what reads left to right (the reference,
phone numbers, e-mail addresses, numeric dates) is isolated with U+2066 ...
U+2069 in the rendered text (``gateway.lib.bidi``), so an SMS, the text
part of an e-mail and the PDF letter show ``05 20 02 09 15`` in its order;
the HTML part turns those marks into ``<bdi dir="ltr">``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from channels.webform.i18n import format_date
from gateway.lib.bidi import bdi_runs, isolate_runs
from normalizer.contract import ComplaintMessage

TEMPLATES = Path(__file__).parent / "templates"
# Primary language subtag -> languages of the acknowledgement, first one first.
LANGUAGES_BY_TAG: dict[str, tuple[str, ...]] = {
    "fr": ("fr",),
    "ar": ("ar", "fr"),
    "ary": ("ar", "fr"),
    "en": ("en",),
    "es": ("es",),
}
WHEN_UNSURE: tuple[str, ...] = ("fr", "ar")
# Under this confidence the detected language is not trusted on its own.
MIN_CONFIDENCE = 0.5
DIRECTIONS = {"ar": "rtl"}
TEMPLATE_LANGUAGES = ("fr", "ar", "en", "es")
MAIL_RUN_STYLE = "white-space:nowrap;"


@dataclass(frozen=True)
class Block:
    """One language's part of an acknowledgement."""

    language: str
    direction: str
    subject: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def languages_for(message: ComplaintMessage) -> tuple[str, ...]:
    """The acknowledgement's languages, from the customer's choice or the text's language."""
    chosen = message.customer.preferred_language
    if chosen:
        return LANGUAGES_BY_TAG.get(chosen.split("-")[0], WHEN_UNSURE)
    language = message.language
    if language.confidence < MIN_CONFIDENCE:
        return WHEN_UNSURE
    return LANGUAGES_BY_TAG.get(language.tag.split("-")[0], WHEN_UNSURE)


@cache
def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # Plain text (e-mail text part, SMS, letter) is not HTML: nothing to escape.
        autoescape=select_autoescape(["html"]) if autoescape else False,  # noqa: S701
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    # The HTML part: left-to-right runs kept whole and on one line.
    env.filters["bidi"] = lambda text: bdi_runs(text, style=MAIL_RUN_STYLE)
    return env


def variables(
    message: ComplaintMessage, language: str, zone: str, answer_days: int
) -> dict[str, object]:
    local_due = message.answer_due_at.astimezone(ZoneInfo(zone))
    # Only what we wrote or computed: no text a stranger typed (the name, a subject)
    # reaches an acknowledgement (review S5); a template naming one fails to render.
    return {
        "reference": message.reference,
        "received": format_date(message.received_at, language, zone),
        "answer_due": format_date(message.answer_due_at, language, zone),
        "answer_due_short": f"{local_due:%d/%m/%Y}",
        "answer_days": answer_days,
    }


def render(kind: str, language: str, values: dict[str, object]) -> str:
    """Render ``templates/<language>/<kind>.txt`` with the complaint's values.

    Right-to-left languages get their left-to-right runs isolated (LRI ... PDI).
    """
    text = _environment(False).get_template(f"{language}/{kind}.txt").render(values).strip()
    return isolate_runs(text) if DIRECTIONS.get(language) == "rtl" else text


def blocks(
    message: ComplaintMessage,
    kind: str,
    zone: str,
    answer_days: int,
    extra: Mapping[str, Mapping[str, object]] | None = None,
) -> list[Block]:
    """One block per language of the acknowledgement (or notice): subject and paragraphs.

    ``kind`` ``email`` is the acknowledgement; ``extension/email`` the notice of a
    longer delay, whose subject is ``extension/subject``.
    """
    found = []
    folder = kind.rpartition("/")[0]
    for language in languages_for(message):
        values = variables(message, language, zone, answer_days) | dict(
            (extra or {}).get(language, {})
        )
        body = render(kind, language, values)
        found.append(
            Block(
                language=language,
                direction=DIRECTIONS.get(language, "ltr"),
                subject=render(f"{folder}/subject" if folder else "subject", language, values),
                paragraphs=tuple(part.strip() for part in body.split("\n\n") if part.strip()),
            )
        )
    return found


def html_document(parts: list[Block], subject: str, reference: str) -> str:
    return (
        _environment(True)
        .get_template("email.html")
        .render(blocks=parts, subject=subject, reference=reference)
    )
