"""Which Cash Plus product a complaint is about, from its text, by hand-written rules.

draft (subject, body) -> **detect_product** (``products.json``: words and
phrases per product, in every language we support) -> a ``ProductGuess``
(code, method ``rules``, confidence, the words that decided) or ``None``
when unsure. The web form and the partner API name the product themselves
(method ``declared``); the rules fill it for e-mails, calls, letters and
messages.

The rules have two kinds of words: terms that name a product alone (a
brand such as Western Union, a biller such as Lydec, the cash machine) and
everyday words in groups, a group being one cue ("carte", "ma carte",
"card", "البطاقة"). Unsure means: neither a specific term nor two cues of
different groups, or as strong a second product as the first, or a lead
too small for the confidence to reach ``MIN_CONFIDENCE``. A wrong product
misroutes a complaint; an empty one only asks a person to choose.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RULES = Path(__file__).parent / "products.json"
MIN_CONFIDENCE = 0.5
# A product is named on one specific term (strength 2) or two generic cues of
# different groups (1 each): one everyday word ("carte", "application") is not enough.
MIN_STRENGTH = 2
# Confidence by the strength of the leading product.
_BASE = (0.0, 0.6, 0.75, 0.9)


@dataclass(frozen=True)
class ProductGuess:
    code: str
    method: str
    confidence: float
    matched: tuple[str, ...]


def fold(text: str) -> str:
    """Lower case, Latin accents removed, apostrophes unified; Arabic letters kept as they are."""
    text = text.lower().replace("’", "'").replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        char
        for char in decomposed
        if not (unicodedata.combining(char) and "\u0300" <= char <= "\u036f")
    )


@dataclass(frozen=True)
class Cue:
    """One word of the rules: a ``specific`` term, or one of a ``generic`` group's words."""

    word: str
    pattern: re.Pattern[str]
    group: int | None  # None: a specific term
    # The folded word: text without it cannot match ``pattern`` (tested first, cheaply).
    needle: str = ""


@dataclass(frozen=True)
class Found:
    """What one product's words found in a text."""

    specific: tuple[str, ...]
    generic: tuple[str, ...]  # one word per group found

    @property
    def strength(self) -> int:
        # A product-specific term weighs as much as two independent everyday cues.
        return 2 * len(self.specific) + len(self.generic)


def _compile(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w']){re.escape(fold(word))}(?!\w)")


@cache
def _patterns() -> dict[str, tuple[Cue, ...]]:
    table: dict[str, dict[str, Any]] = json.loads(RULES.read_text("utf-8"))["products"]
    return {
        code: (
            *(Cue(word, _compile(word), None, fold(word)) for word in rules.get("specific", [])),
            *(
                Cue(word, _compile(word), group, fold(word))
                for group, words in enumerate(rules.get("generic", []))
                for word in words
            ),
        )
        for code, rules in table.items()
    }


def product_codes() -> frozenset[str]:
    return frozenset(_patterns())


def find_cues(folded: str, cues: tuple[Cue, ...]) -> Found:
    """The specific terms and the generic groups found in ``folded`` text.

    A generic word inside a specific term found ("transfert" in "code de
    transfert") is part of that term, not a second cue; the words of one
    group ("carte", "ma carte", "card") are one cue however many appear.
    """
    specific: list[str] = []
    spans: list[tuple[int, int]] = []
    for cue in cues:
        if cue.group is None and cue.needle in folded and (match := cue.pattern.search(folded)):
            specific.append(cue.word)
            spans.append(match.span())
    groups: dict[int, str] = {}
    for cue in cues:
        if cue.group is None or cue.group in groups or cue.needle not in folded:
            continue
        for match in cue.pattern.finditer(folded):
            if not any(start <= match.start() and match.end() <= end for start, end in spans):
                groups[cue.group] = cue.word
                break
    return Found(tuple(specific), tuple(groups.values()))


def detect_product(text: str) -> ProductGuess | None:
    """The product ``text`` is about, or ``None`` when the rules are unsure."""
    folded = fold(text)
    found = {code: find_cues(folded, cues) for code, cues in _patterns().items()}
    ranked = sorted(found.items(), key=lambda item: item[1].strength, reverse=True)
    (best, cues), second = ranked[0], ranked[1][1].strength if len(ranked) > 1 else 0
    lead = cues.strength
    if lead < MIN_STRENGTH:
        return None
    confidence = _BASE[min(lead, len(_BASE) - 1)] * (lead - second) / lead
    if confidence < MIN_CONFIDENCE:
        return None
    return ProductGuess(best, "rules", round(confidence, 3), cues.specific + cues.generic)
