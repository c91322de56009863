"""Character error rate: how far an OCR text is from its ground truth.

CER = Levenshtein distance / length of the truth, after the normalisation
the evaluation data asks for (whitespace runs to one space, case folded,
NFC; TAPUSCORPUS markup ``_`` and ``^`` dropped).
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize_for_cer(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("_", "").replace("^", "")
    return _SPACE.sub(" ", text).strip().casefold()


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def character_error_rate(hypothesis: str, truth: str) -> float:
    reference = normalize_for_cer(truth)
    if not reference:
        return 0.0 if not normalize_for_cer(hypothesis) else 1.0
    return levenshtein(normalize_for_cer(hypothesis), reference) / len(reference)
