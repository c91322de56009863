"""The Arabic part of a PDF letter keeps numbers and references in their order, read by poppler.

``pdftotext -bbox`` gives each word drawn on the page with its position: in
a right-to-left line, the first group of ``06 12 34 56 78`` must still be
drawn left of the last one. The same line drawn without the isolates is
measured too, to show that the measure sees the reversal it guards against.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf.enums import XPos, YPos

from gateway.acks.policy import Plan
from gateway.acks.senders import Outgoing
from gateway.acks.senders.letter import LetterPdf, render_letter
from gateway.lib.bidi import plain
from tests.unit.test_acks_texts import ZONE, complaint

pytestmark = pytest.mark.integration

LINE = "الهاتف: 06 12 34 56 78، المبلغ 1 250,00 درهم"
WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>([^<]*)</word>')


def drawn_words(pdf: bytes, folder: Path) -> list[tuple[float, float, str]]:
    """(y, x, text) of every word poppler finds, isolate marks left out."""
    path = folder / "page.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, check=True)
    found = [
        (float(y), float(x), plain(text))
        for x, y, text in WORD.findall(done.stdout.decode("utf-8"))
    ]
    return [item for item in found if item[2]]


def is_arabic(word: str) -> bool:
    return any("\u0600" <= char <= "\u06ff" for char in word)


def x_of(words: list[tuple[float, float, str]], text: str) -> float:
    [x] = [x for _y, x, word in words if word.strip("،:") == text]
    return x


def one_line(isolated: bool) -> bytes:
    pdf = LetterPdf()
    pdf.add_page()
    pdf.use("ar", 12)
    if isolated:
        pdf.lines("ar", [LINE], 6)  # what every Arabic line of a letter goes through
    else:
        pdf.multi_cell(0, 6, LINE, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    return bytes(pdf.output())


def test_a_phone_number_and_an_amount_in_an_arabic_line_are_drawn_left_to_right(
    tmp_path: Path,
) -> None:
    words = drawn_words(one_line(isolated=True), tmp_path)
    assert x_of(words, "06") < x_of(words, "12") < x_of(words, "78")
    assert x_of(words, "1") < x_of(words, "250,00")


def test_without_the_isolates_the_same_line_is_drawn_backwards(tmp_path: Path) -> None:
    words = drawn_words(one_line(isolated=False), tmp_path)
    assert x_of(words, "06") > x_of(words, "78")
    assert x_of(words, "1") > x_of(words, "250,00")


@pytest.mark.parametrize("tag", ["ar", "zgh-Tfng"])
def test_the_arabic_letter_reads_its_reference_whole_and_its_phone_number(
    tmp_path: Path, tag: str
) -> None:
    message = complaint(tag)  # a Tamazight letter has the same Arabic section after its own
    outgoing = Outgoing(message, Plan("letter", "-", ("fr", "ar")), "<l@host>")
    pdf = render_letter(outgoing, ZONE, 40, datetime(2026, 12, 6, 10, tzinfo=UTC))
    drawn = drawn_words(pdf, tmp_path)
    words = [word for _y, _x, word in drawn]
    assert sum(message.reference in word for word in words) >= 6  # both languages, every mention
    assert any("0520020915" in word for word in words)
    assert any("contact@cashplus.ma" in word for word in words)
    # "الرقم المرجعي: CP-…" runs right to left: the reference is drawn left of its label.
    lines: dict[float, list[tuple[float, str]]] = {}
    for y, x, word in drawn:
        lines.setdefault(y, []).append((x, word))
    [reference_line] = [
        sorted(line)
        for line in lines.values()
        if len(line) == 3
        and [is_arabic(word) for _x, word in line].count(True) == 2
        and any(word == message.reference for _x, word in line)
    ]
    assert reference_line[0][1] == message.reference
