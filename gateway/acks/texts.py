"""What an acknowledgement says, in which languages: templates per language, one table.

complaint -> **languages_for** (table) -> **render** (templates/<lang>/*.txt)
-> e-mail, SMS or letter composition.

The language comes from the customer's explicit choice (web form) when
there is one, otherwise from the complaint's text: Arabic for ``ar`` and
Darija (with French below, as many Moroccan customers read both), French
for ``fr``, English, Spanish, Tamazight in the customer's script (Tifinagh
``zgh-Tfng`` or Latin ``ber-Latn``, French below); French and Arabic when
the text is of another language or the detection is unsure. The texts
themselves are files per language under ``templates/``, reviewed for tone;
no sentence lives in code. The Tamazight ones are not reviewed yet
(``UNREVIEWED``, ``templates/README.md``): they go out, named in
``event.ack.sent`` and listed by ``intake ack texts``, until a native
speaker has checked them. They write dates in digits (``written_date``).

In a right-to-left language, what reads left to right (the reference,
phone numbers, e-mail addresses, numeric dates) is isolated with U+2066 ...
U+2069 in the rendered text (``gateway.lib.bidi``), so an SMS, the text
part of an e-mail and the PDF letter show ``05 20 02 09 15`` in its order;
the HTML part turns those marks into ``<bdi dir="ltr">``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from channels.webform.i18n import format_date
from gateway.lib.bidi import bdi_runs, isolate_runs
from normalizer.contract import ComplaintMessage

TEMPLATES = Path(__file__).parent / "templates"
TIFINAGH, TAMAZIGHT_LATIN = "zgh-Tfng", "ber-Latn"
# Language tag (language-script, else language) -> languages of the acknowledgement,
# first one first. Each is a folder of ``templates/``.
LANGUAGES_BY_TAG: dict[str, tuple[str, ...]] = {
    "fr": ("fr",),
    "ar": ("ar", "fr"),
    "ary": ("ar", "fr"),
    "en": ("en",),
    "es": ("es",),
    # Tamazight in the script the customer wrote in, French below. A call's
    # ``zgh`` names no script: Latin, like the phone line's own SMS replies.
    "zgh-Tfng": (TIFINAGH, "fr"),
    "ber-Tfng": (TIFINAGH, "fr"),
    "zgh-Latn": (TAMAZIGHT_LATIN, "fr"),
    "ber-Latn": (TAMAZIGHT_LATIN, "fr"),
    "zgh": (TAMAZIGHT_LATIN, "fr"),
    "ber": (TAMAZIGHT_LATIN, "fr"),
}
WHEN_UNSURE: tuple[str, ...] = ("fr", "ar")
# Under this confidence the detected language is not trusted on its own.
MIN_CONFIDENCE = 0.5
DIRECTIONS = {"ar": "rtl"}
TEMPLATE_LANGUAGES = ("fr", "ar", "en", "es", TIFINAGH, TAMAZIGHT_LATIN)
# Texts no native speaker has checked yet (``templates/README.md``): sent all the
# same (better than a language the customer did not write in, and French is
# below), named in the ack events' ``unreviewed_languages`` and by ``intake ack texts``.
UNREVIEWED: frozenset[str] = frozenset({TIFINAGH, TAMAZIGHT_LATIN})
# Languages without reviewed month names (the web form's ``texts/``): dates in digits.
NUMERIC_DATES: frozenset[str] = frozenset({TIFINAGH, TAMAZIGHT_LATIN})
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
        return _by_tag(chosen)
    language = message.language
    if language.confidence < MIN_CONFIDENCE:
        return WHEN_UNSURE
    return _by_tag(language.tag)


def _by_tag(tag: str) -> tuple[str, ...]:
    """The table's row for the tag's language and script (``zgh-Tfng``), else its language."""
    subtags = tag.split("-")
    for size in (2, 1):
        found = LANGUAGES_BY_TAG.get("-".join(subtags[:size]))
        if found is not None:
            return found
    return WHEN_UNSURE


def unreviewed(languages: tuple[str, ...]) -> list[str]:
    """Those of ``languages`` whose texts no native speaker has checked yet."""
    return [language for language in languages if language in UNREVIEWED]


def written_date(moment: datetime, language: str, zone: str) -> str:
    """A date as an acknowledgement in ``language`` writes it: in words, or ``05/01/2027``."""
    if language in NUMERIC_DATES:
        return f"{moment.astimezone(ZoneInfo(zone)):%d/%m/%Y}"
    return format_date(moment, language, zone)


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
        "received": written_date(message.received_at, language, zone),
        "answer_due": written_date(message.answer_due_at, language, zone),
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
