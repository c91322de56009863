"""tesseract, called as a program: script and orientation detection, then recognition.

The language set is chosen per page from the detected script (``SCRIPTS``):
``ara+fra+eng`` on every page is both slower and worse, because each extra
model competes for every word. A page whose script OSD cannot tell (too
little text) is read with each candidate set and the more confident reading
wins; such pages are short, so this costs little.

A Latin page whose first reading is in a language with its own model
(``SECOND_PASS``: Spanish, from northern Morocco) is read again with it.
Adding ``spa`` to every Latin page would cost French pages accuracy
(measured on generated letters: French CER 0 % -> 0.3-1.1 % with
``spa+fra+eng``, Spanish CER 1.6-2.6 % -> 0 % with the second pass).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from normalizer.ocr.sandbox import Limits, run_limited

# OSD script name -> tesseract language set used to read it.
SCRIPTS: dict[str, str] = {
    "Latin": "fra+eng",
    "Arabic": "ara",
}
DEFAULT_SCRIPT = "Latin"
# Language of a Latin page's first reading -> the set it is read again with.
SECOND_PASS: dict[str, str] = {
    "es": "spa+eng",
}
# Below this OSD script confidence, the script is treated as unknown.
MIN_SCRIPT_CONFIDENCE = 1.0
_OSD = re.compile(r"^(Rotate|Script|Script confidence|Orientation confidence):\s*(.+)$", re.M)


@dataclass(frozen=True)
class Orientation:
    rotate: int
    script: str | None
    script_confidence: float


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float
    languages: str


def detect_orientation(image: Path, limits: Limits) -> Orientation:
    """OSD (``--psm 0``); an unknown script when there is too little text to tell."""
    try:
        out = run_limited(
            [
                "tesseract",
                str(image),
                "stdout",
                "--psm",
                "0",
                "-l",
                "osd",
                "-c",
                "min_characters_to_try=5",
            ],
            limits,
        ).decode("utf-8", "replace")
    except Exception:  # OSD gives up on near-empty pages; recognition still runs
        return Orientation(0, None, 0.0)
    fields = dict(_OSD.findall(out))
    confidence = float(fields.get("Script confidence", "0") or 0)
    script = fields.get("Script") if confidence >= MIN_SCRIPT_CONFIDENCE else None
    return Orientation(int(fields.get("Rotate", "0") or 0), script, confidence)


def recognize(image: Path, languages: str, limits: Limits) -> Reading:
    """Text and mean word confidence (0-100, weighted by word length)."""
    base = image.with_suffix(f".{languages.replace('+', '_')}")
    run_limited(
        ["tesseract", str(image), str(base), "-l", languages, "--psm", "3", "txt", "tsv"],
        limits,
    )
    text = base.with_suffix(base.suffix + ".txt").read_text(encoding="utf-8", errors="replace")
    table = base.with_suffix(base.suffix + ".tsv").read_text(encoding="utf-8", errors="replace")
    return Reading(
        text=text.replace("\f", "").strip(), confidence=_confidence(table), languages=languages
    )


def _confidence(tsv: str) -> float:
    total = weight = 0.0
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        word = (row.get("text") or "").strip()
        try:
            conf = float(row.get("conf") or -1)
        except ValueError:
            continue
        if word and conf >= 0:
            total += conf * len(word)
            weight += len(word)
    return round(total / weight, 2) if weight else 0.0


def read_page(image: Path, script: str | None, limits: Limits) -> tuple[Reading, str]:
    """Read with the set for ``script``; with no script, try each set and keep the best."""
    if script is not None:
        chosen = script if script in SCRIPTS else DEFAULT_SCRIPT
        reading = recognize(image, SCRIPTS[chosen], limits)
    else:
        readings = [
            (recognize(image, languages, limits), name) for name, languages in SCRIPTS.items()
        ]
        reading, chosen = max(readings, key=lambda pair: pair[0].confidence)
    if chosen == "Latin":
        reading = _read_again_in_its_language(image, reading, limits)
    return reading, chosen


def _read_again_in_its_language(image: Path, first: Reading, limits: Limits) -> Reading:
    """The reading with the model of the language the first reading is in, if it has one."""
    if not first.text:
        return first
    from normalizer.language import detect_text_language

    languages = SECOND_PASS.get(detect_text_language(first.text).tag)
    if languages is None or languages == first.languages:
        return first
    return recognize(image, languages, limits)
