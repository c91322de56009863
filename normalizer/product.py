"""Which Cash Plus product a complaint is about, from its text, by hand-written rules.

draft (subject, body) -> **detect_product** (``products.json``: words and
phrases per product, in every language we support) -> a ``ProductGuess``
(code, method ``rules``, confidence, the words that decided) or ``None``
when unsure. The web form and the partner API name the product themselves
(method ``declared``); the rules fill it for e-mails, calls, letters and
messages.

Unsure means: no product word, or as many words for a second product as
for the first, or a lead too small for the confidence to reach
``MIN_CONFIDENCE``. A wrong product misroutes a complaint; an empty one
only asks a person to choose.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RULES = Path(__file__).parent / "products.json"
MIN_CONFIDENCE = 0.5
# Confidence by the number of distinct words of the leading product.
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


@cache
def _patterns() -> dict[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    table: dict[str, list[str]] = json.loads(RULES.read_text("utf-8"))["products"]
    return {
        code: tuple(
            (word, re.compile(rf"(?<![\w']){re.escape(fold(word))}(?!\w)")) for word in words
        )
        for code, words in table.items()
    }


def product_codes() -> frozenset[str]:
    return frozenset(_patterns())


def detect_product(text: str) -> ProductGuess | None:
    """The product ``text`` is about, or ``None`` when the rules are unsure."""
    folded = fold(text)
    hits = {
        code: tuple(word for word, pattern in patterns if pattern.search(folded))
        for code, patterns in _patterns().items()
    }
    ranked = sorted(hits.items(), key=lambda item: len(item[1]), reverse=True)
    (best, words), second = ranked[0], len(ranked[1][1]) if len(ranked) > 1 else 0
    if not words:
        return None
    lead = len(words)
    confidence = _BASE[min(lead, len(_BASE) - 1)] * (lead - second) / lead
    if confidence < MIN_CONFIDENCE:
        return None
    return ProductGuess(best, "rules", round(confidence, 3), words)
