"""Printable acknowledgement letters (PDF, French and Arabic) for the mailroom.

``Acknowledger`` -> **LetterSender** (render the PDF, keep it in the blob
store) -> an acknowledgement row ``queued`` -> **Mailroom** (the staff page
``/letters/acks`` and the partner API ``/v1/acks/letters`` both use it):
list, print, and mark posted, which is when the letter counts as sent and
``ack.sent`` is published.

Rendering: fpdf2 with HarfBuzz shaping (uharfbuzz), so Arabic letters join
and run right to left, with Debian's Noto fonts (``fonts-noto-core``). The
recipient block sits where a window envelope (DL, window on the right)
shows it. Texts: ``templates/{fr,ar}/letter.txt`` and ``letterhead.json``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from channels.webform.i18n import format_date
from config.settings import Settings
from gateway.acks.policy import LETTER, Plan
from gateway.acks.sending import Outgoing, Sent
from gateway.acks.store import QUEUED, SENT, AckRecord
from gateway.acks.texts import TEMPLATES, languages_for, render, variables
from gateway.store.blobs import BlobStore
from normalizer.contract import ComplaintMessage

if TYPE_CHECKING:
    from gateway.acks.acknowledger import Acknowledger
    from gateway.lib.services import Services

log = logging.getLogger("intake.acks")

FONTS = Path("/usr/share/fonts/truetype/noto")
LATIN, ARABIC = "NotoSans", "NotoNaskhArabic"
LETTER_LANGUAGES = ("fr", "ar")
DIRECTION = {"fr": "ltr", "ar": "rtl"}
FONT_FOR = {"fr": LATIN, "ar": ARABIC}
MARGIN = 20.0
WINDOW = (110.0, 50.0, 80.0)  # x, y, width of a DL envelope window, in mm


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
        align = "R" if DIRECTION[language] == "rtl" else "L"
        for line in lines:
            self.multi_cell(width, height, line, align=align, new_x=XPos.LEFT, new_y=YPos.NEXT)


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
    address = [message.customer.name or "", *(message.customer.postal_address or "").splitlines()]
    pdf.lines("fr", [line for line in address if line.strip()], 5.5, width=width)
    pdf.set_xy(MARGIN, 88)
    dated = {code: format_date(today, code, zone) for code in LETTER_LANGUAGES}
    for language in LETTER_LANGUAGES:
        values = variables(message, language, zone, answer_days)
        _section(pdf, language, render("letter", language, values), dated[language], message)
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


class NoSuchLetter(LookupError):
    """No acknowledgement letter has this id."""


class NotQueued(Exception):
    """The letter is not waiting for the mailroom (nor already posted)."""


class ComplaintMissing(Exception):
    """A queued letter whose complaint cannot be loaded: ours to look into, not the mailroom's."""


@dataclass(frozen=True)
class QueuedLetter:
    """A letter waiting to be posted, with what the mailroom needs to see of it."""

    record: AckRecord
    name: str | None
    address: list[str]
    # The complaint's acknowledgement deadline (None if the complaint is gone).
    due_at: datetime | None
    # Local days until that deadline: 0 is today, negative is late.
    days_left: int | None


class Mailroom:
    """The mailroom's side of acknowledgement letters: list, print, mark posted.

    One path for the staff page and the partner API, so a letter posted
    from either is recorded the same way: ``Acknowledger.record_sent``,
    which publishes ``ack.sent`` with the posting time.
    """

    def __init__(self, services: Services, acknowledger: Acknowledger) -> None:
        self.services = services
        self.acknowledger = acknowledger
        self.zone = ZoneInfo(services.settings.timezone)

    def queued(self, now: datetime) -> list[QueuedLetter]:
        """Letters to post, oldest first, each with its days left before the deadline."""
        complaints = self.services.store.complaints
        found = []
        for record in self.acknowledger.acks.letters(QUEUED):
            message = complaints.get_by_reference(record.reference)
            due_at = message.ack_due_at if message else None
            found.append(
                QueuedLetter(
                    record=record,
                    name=message.customer.name if message else None,
                    address=[line for line in (record.recipient or "").splitlines() if line],
                    due_at=due_at,
                    days_left=self._days_between(now, due_at) if due_at else None,
                )
            )
        return found

    def _days_between(self, now: datetime, due_at: datetime) -> int:
        return (due_at.astimezone(self.zone).date() - now.astimezone(self.zone).date()).days

    def letter(self, ack_id: str) -> AckRecord:
        record = self.acknowledger.acks.by_id(ack_id)
        if record is None or record.method != LETTER:
            raise NoSuchLetter(f"no acknowledgement letter {ack_id}")
        return record

    def pdf(self, ack_id: str) -> tuple[AckRecord, bytes]:
        """The letter as it was rendered when queued (the same bytes become the evidence)."""
        record = self.letter(ack_id)
        return record, self.services.store.blobs.get(str(record.document))

    def all_queued_pdf(self) -> bytes | None:
        """Every queued letter in one PDF, to print them at once; None when there is none."""
        blobs = self.services.store.blobs
        documents = [blobs.get(str(r.document)) for r in self.acknowledger.acks.letters(QUEUED)]
        return combined_pdf(documents) if documents else None

    def mark_posted(self, ack_id: str, posted_at: datetime) -> AckRecord:
        """It went out: ``ack.sent`` with ``posted_at``. Posting it twice changes nothing."""
        record = self.letter(ack_id)
        if record.status == SENT:
            return record
        if record.status != QUEUED:
            raise NotQueued(f"letter {ack_id} is {record.status}, not queued")
        message = self.services.store.complaints.get_by_reference(record.reference)
        if message is None:
            log.error(
                "letter %s is queued but complaint %s cannot be loaded", ack_id, record.reference
            )
            raise ComplaintMissing(
                f"letter {ack_id}: its complaint {record.reference} cannot be loaded; "
                "it was not recorded as posted"
            )
        pdf = self.services.store.blobs.get(str(record.document))
        plan = Plan(LETTER, str(record.recipient), languages_for(message))
        sent = Sent(evidence=pdf, content_type="application/pdf", document=record.document)
        return self.acknowledger.record_sent(message, plan, sent, posted_at)


def mailroom_for(services: Services) -> Mailroom:
    """The ``Mailroom`` of a web process (it sends nothing itself: no senders)."""
    # Imported here: the acknowledger imports this module for ``LetterSender``.
    from gateway.acks.acknowledger import Acknowledger

    return Mailroom(services, Acknowledger(services, senders={}))


def combined_pdf(documents: list[bytes]) -> bytes:
    """Our own letters joined into one PDF with poppler's ``pdfunite`` (poppler reads scans too)."""
    with tempfile.TemporaryDirectory(prefix="intake-letters-") as folder:
        paths = []
        for index, data in enumerate(documents):
            path = Path(folder) / f"{index:04d}.pdf"
            path.write_bytes(data)
            paths.append(str(path))
        target = Path(folder) / "all.pdf"
        # poppler, as for scans; our own files, no shell.
        command = ["pdfunite", *paths, str(target)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603
        return target.read_bytes()
