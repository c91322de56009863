"""tesseract, called as a program: script and orientation detection, then recognition.

The language set is chosen per page from the detected script (``SCRIPTS``):
``ara+fra+eng`` on every page is both slower and worse, because each extra
model competes for every word. A page whose script OSD cannot tell (too
little text) is read with each candidate set and the more confident reading
wins; such pages are short, so this costs little.
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
        return recognize(image, SCRIPTS[chosen], limits), chosen
    readings = [(recognize(image, languages, limits), name) for name, languages in SCRIPTS.items()]
    return max(readings, key=lambda pair: pair[0].confidence)
