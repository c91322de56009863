"""Secondary languages of mixed text (French–Darija code-switching and the like).

Every kept word gets a language: its script decides for Tifinagh and Arabic
words, a clear word-list match decides for Latin words, and the rest take the
language decided for their script. A language other than the main one that
holds a fair share of the words is reported as secondary, most present first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# Below this share of words a stray loanword ("ok", "merci") is not a language.
MIN_SHARE = 0.15
# Below this many tagged words, shares are too coarse to call anything mixed.
MIN_WORDS = 2


def secondary_shares(word_tags: Iterable[str], primary: str) -> list[tuple[str, float]]:
    """Languages other than ``primary`` with their share of words, most present first."""
    counts = Counter(word_tags)
    total = sum(counts.values())
    if total < MIN_WORDS:
        return []
    shares = [
        (tag, round(count / total, 3))
        for tag, count in counts.items()
        if tag not in (primary, "und") and count / total >= MIN_SHARE
    ]
    return sorted(shares, key=lambda item: (-item[1], item[0]))
