"""Printable acknowledgement letters (PDF, French and Arabic; Tamazight first) for the mailroom.

``Acknowledger`` -> **LetterSender** (render the PDF, keep it in the blob
store) -> an acknowledgement row ``queued`` -> ``gateway.acks.mailroom``
(list, print, mark posted: only then does the letter count as sent and
``ack.sent`` is published).

Rendering: fpdf2 with HarfBuzz shaping (uharfbuzz), so Arabic letters join
and run right to left, with Debian's Noto fonts (``fonts-noto-core``, under
the SIL Open Font License; Noto Sans Tifinagh for Tamazight, which has no
Latin letters, digits or bold: those come from Noto Sans, its Regular serves
as bold). The recipient block sits where a window envelope (DL, window on
the right) shows it. Texts: ``templates/<language>/letter.txt`` and
``letterhead.json``. Every letter is in French and Arabic; a complaint in
Tamazight gets Tamazight first, in the customer's script (Arabic and
Tamazight are Morocco's official languages).
Every Arabic line has its left-to-right runs (reference, numbers, e-mail)
between U+2066 and U+2069 (``gateway.lib.bidi``): fpdf2's bidi algorithm
honours the isolates, and Noto Sans draws the marks with no width.

The letter's text is ours alone (reference and dates). The window block is
the postal address the customer typed, which the post needs, and above it
their name, which helps the postman but is a stranger's free text (review
S5): it is printed only when it looks like a name (letters, spaces,
apostrophes, hyphens, a dot after an initial; at most ``MAX_NAME``
characters) and left out otherwise (a URL, digits, an e-mail address, a
sentence). Mailroom staff see every letter before posting it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from config.settings import Settings
from gateway.acks.senders import Outgoing, Sent
from gateway.acks.texts import (
    DIRECTIONS,
    TAMAZIGHT_LATIN,
    TEMPLATES,
    TIFINAGH,
    languages_for,
    render,
    variables,
    written_date,
)
from gateway.lib.bidi import isolate_runs
from gateway.store.blobs import BlobStore
from normalizer.contract import ComplaintMessage

FONTS = Path("/usr/share/fonts/truetype/noto")
LATIN, ARABIC, TIFINAGH_FONT = "NotoSans", "NotoNaskhArabic", "NotoSansTifinagh"
# The font files of each family: regular, bold.
FONT_FILES = {
    LATIN: ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    ARABIC: ("NotoNaskhArabic-Regular.ttf", "NotoNaskhArabic-Bold.ttf"),
    # No bold Tifinagh exists: a Tamazight subject line is in the regular weight.
    TIFINAGH_FONT: ("NotoSansTifinagh-Regular.ttf", "NotoSansTifinagh-Regular.ttf"),
}
LETTER_LANGUAGES = ("fr", "ar")
# Languages of the acknowledgement that get a section of their own, before the others.
OWN_SECTION = (TIFINAGH, TAMAZIGHT_LATIN)
FONT_FOR = {"ar": ARABIC, TIFINAGH: TIFINAGH_FONT}  # any other: LATIN
# Point size and line height (mm) of a section's text; any other: ``SIZE``.
SIZES = {"ar": (11.5, 6.0)}
SIZE = (10.0, 4.8)
MARGIN = 20.0
WINDOW = (110.0, 50.0, 80.0)  # x, y, width of a DL envelope window, in mm
# A name on the envelope: one line a person would write (``Mme Fatima Zahra El-Alaoui``).
MAX_NAME = 40
NAME_LIKE = re.compile(r"(?:[^\W\d_]|[ '’.-])+")
DOMAIN_LIKE = re.compile(r"\.[^\W\d_]")  # "cashplus-verif.example": a dot inside a word


def envelope_name(name: str | None) -> str | None:
    """The customer's name for the window, or ``None`` when it is not plainly a name."""
    text = " ".join((name or "").split())
    if not text or len(text) > MAX_NAME or not NAME_LIKE.fullmatch(text):
        return None
    return None if DOMAIN_LIKE.search(text) else text


@cache
def _letterhead() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TEMPLATES / "letterhead.json").read_text("utf-8"))
    return data


class LetterPdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN)
        for family, (regular, bold) in FONT_FILES.items():
            self.add_font(family, "", str(FONTS / regular))
            self.add_font(family, "B", str(FONTS / bold))
        # Latin words (the reference, an e-mail address, digits) inside Arabic or
        # Tifinagh text; a name in Tifinagh on the envelope.
        self.set_fallback_fonts([LATIN, TIFINAGH_FONT])

    def use(self, language: str, size: float, style: str = "") -> None:
        self.set_font(FONT_FOR.get(language, LATIN), style, size)
        self.set_text_shaping(
            use_shaping_engine=True,
            direction=DIRECTIONS.get(language, "ltr"),
            script=None,
            language=language.partition("-")[0],
        )

    def lines(self, language: str, lines: list[str], height: float, width: float = 0) -> None:
        rtl = DIRECTIONS.get(language) == "rtl"
        for line in lines:
            shown = isolate_runs(line) if rtl else line
            self.multi_cell(
                width, height, shown, align="R" if rtl else "L", new_x=XPos.LEFT, new_y=YPos.NEXT
            )


def letter_languages(message: ComplaintMessage) -> tuple[str, ...]:
    """The letter's sections: Tamazight first for a complaint in Tamazight, French, Arabic."""
    first = [language for language in languages_for(message) if language in OWN_SECTION]
    return (*first, *LETTER_LANGUAGES)


def render_letter(outgoing: Outgoing, zone: str, answer_days: int, today: datetime) -> bytes:
    """The PDF: letterhead, recipient in the window, then the texts (``letter_languages``)."""
    message = outgoing.message
    pdf = LetterPdf()
    pdf.add_page()
    head = _letterhead()
    pdf.use("fr", 9)
    pdf.lines("fr", head["fr"]["sender"], 4.5, width=85)
    pdf.set_xy(MARGIN, MARGIN)
    pdf.use("ar", 10)
    pdf.lines("ar", head["ar"]["sender"], 5.5)
    x, y, width = WINDOW
    pdf.set_xy(x, y)
    pdf.use("fr", 11)
    name = envelope_name(message.customer.name)
    address = [name or "", *(message.customer.postal_address or "").splitlines()]
    pdf.lines("fr", [line for line in address if line.strip()], 5.5, width=width)
    pdf.set_xy(MARGIN, 88)
    for language in letter_languages(message):
        values = variables(message, language, zone, answer_days) | outgoing.values_for(language)
        text = render(outgoing.template("letter"), language, values)
        dated = written_date(today, language, zone)
        # A language's text is never split across two pages: it starts a new one.
        with pdf.unbreakable() as page:
            _section(cast(LetterPdf, page), language, text, dated, message)
    return bytes(pdf.output())


def _section(
    pdf: LetterPdf, language: str, text: str, dated: str, message: ComplaintMessage
) -> None:
    head = _letterhead()[language]
    subject, *paragraphs = text.split("\n\n")
    size, height = SIZES.get(language, SIZE)
    pdf.use(language, size)
    pdf.lines(language, [head["dated"].format(date=dated)], height)
    pdf.lines(language, [head["reference"].format(reference=message.reference)], height)
    pdf.ln(2)
    pdf.use(language, size, "B")
    pdf.lines(language, [subject.strip()], height)
    pdf.ln(2)
    pdf.use(language, size)
    for paragraph in paragraphs:
        pdf.lines(language, [paragraph.strip()], height)
        pdf.ln(2)
    pdf.ln(4)


class LetterSender:
    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        self.settings = settings
        self.blobs = blobs

    def send(self, outgoing: Outgoing) -> Sent:
        today = datetime.now(ZoneInfo(self.settings.timezone))
        document = render_letter(outgoing, self.settings.timezone, self.settings.answer_days, today)
        stored = self.blobs.put(document)
        return Sent(
            evidence=document,
            content_type="application/pdf",
            status="queued",
            document=stored.location,
        )
