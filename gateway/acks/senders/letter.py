"""Printable acknowledgement letters (PDF, French and Arabic) for the mailroom.

``Acknowledger`` -> **LetterSender** (render the PDF, keep it in the blob
store) -> an acknowledgement row ``queued`` -> ``gateway.acks.mailroom``
(list, print, mark posted: only then does the letter count as sent and
``ack.sent`` is published).

Rendering: fpdf2 with HarfBuzz shaping (uharfbuzz), so Arabic letters join
and run right to left, with Debian's Noto fonts (``fonts-noto-core``). The
recipient block sits where a window envelope (DL, window on the right)
shows it. Texts: ``templates/{fr,ar}/letter.txt`` and ``letterhead.json``.
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
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from channels.webform.i18n import format_date
from config.settings import Settings
from gateway.acks.senders import Outgoing, Sent
from gateway.acks.texts import TEMPLATES, render, variables
from gateway.lib.bidi import isolate_runs
from gateway.store.blobs import BlobStore
from normalizer.contract import ComplaintMessage

FONTS = Path("/usr/share/fonts/truetype/noto")
LATIN, ARABIC = "NotoSans", "NotoNaskhArabic"
LETTER_LANGUAGES = ("fr", "ar")
DIRECTION = {"fr": "ltr", "ar": "rtl"}
FONT_FOR = {"fr": LATIN, "ar": ARABIC}
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
        for family, name in ((LATIN, "NotoSans"), (ARABIC, "NotoNaskhArabic")):
            self.add_font(family, "", str(FONTS / f"{name}-Regular.ttf"))
            self.add_font(family, "B", str(FONTS / f"{name}-Bold.ttf"))
        # Latin words (the reference, an e-mail address) inside Arabic text.
        self.set_fallback_fonts([LATIN])

    def use(self, language: str, size: float, style: str = "") -> None:
        self.set_font(FONT_FOR[language], style, size)
        self.set_text_shaping(
            use_shaping_engine=True, direction=DIRECTION[language], script=None, language=language
        )

    def lines(self, language: str, lines: list[str], height: float, width: float = 0) -> None:
        rtl = DIRECTION[language] == "rtl"
        for line in lines:
            shown = isolate_runs(line) if rtl else line
            self.multi_cell(
                width, height, shown, align="R" if rtl else "L", new_x=XPos.LEFT, new_y=YPos.NEXT
            )


def render_letter(outgoing: Outgoing, zone: str, answer_days: int, today: datetime) -> bytes:
    """The PDF: letterhead, recipient in the window, then French and Arabic texts."""
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
    dated = {code: format_date(today, code, zone) for code in LETTER_LANGUAGES}
    for language in LETTER_LANGUAGES:
        values = variables(message, language, zone, answer_days) | outgoing.values_for(language)
        text = render(outgoing.template("letter"), language, values)
        _section(pdf, language, text, dated[language], message)
    return bytes(pdf.output())


def _section(
    pdf: LetterPdf, language: str, text: str, dated: str, message: ComplaintMessage
) -> None:
    head = _letterhead()[language]
    subject, *paragraphs = text.split("\n\n")
    size, height = (10.0, 4.8) if language == "fr" else (11.5, 6.0)
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
