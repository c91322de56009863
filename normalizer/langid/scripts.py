"""Which writing system a character belongs to.

The language step decides first by script: Tifinagh is Tamazight, Arabic
script is Arabic or Darija, Latin script needs more work, anything else goes
to langdetect. Ranges, not ``unicodedata.name``, because this runs on every
character of every complaint.
"""

from __future__ import annotations

import re

ARABIC = "arabic"
LATIN = "latin"
TIFINAGH = "tifinagh"
OTHER = "other"

# (first, last, script), checked in order; Latin includes the IPA block
# because Berber Latin writes ɣ (U+0263) and ɛ (U+025B).
_RANGES = (
    (0x0041, 0x005A, LATIN),
    (0x0061, 0x007A, LATIN),
    (0x00C0, 0x02AF, LATIN),
    (0x1E00, 0x1EFF, LATIN),
    (0x0600, 0x06FF, ARABIC),
    (0x0750, 0x077F, ARABIC),
    (0x08A0, 0x08FF, ARABIC),
    (0xFB50, 0xFDFF, ARABIC),
    (0xFE70, 0xFEFF, ARABIC),
    (0x2D30, 0x2D7F, TIFINAGH),
)


_CLASSES: dict[str, str] = {}
for _first, _last, _script in _RANGES:
    _CLASSES[_script] = _CLASSES.get(_script, "") + f"\\U{_first:08x}-\\U{_last:08x}"
# One compiled pattern per script: a whole word is checked in C, not letter by letter.
_WHOLE_WORD = tuple(
    (script, re.compile(f"[{chars}\\d'’\\-]+")) for script, chars in _CLASSES.items()
)
_MEMO: dict[str, str] = {}


def script_of_word(word: str) -> str:
    """Script of a word: its only script, else the script of most of its letters."""
    for script, pattern in _WHOLE_WORD:
        if pattern.fullmatch(word):
            return script
    counts: dict[str, int] = {}
    for char in word:
        if char.isalpha():
            script = script_of(char)
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return OTHER
    return max(counts, key=lambda script: (counts[script], script != OTHER))


def script_of(char: str) -> str:
    """Script of one letter: ``latin``, ``arabic``, ``tifinagh`` or ``other``."""
    script = _MEMO.get(char)
    if script is None:
        # Bounded by the number of distinct letters ever seen; a dict write is atomic.
        script = _MEMO[char] = _lookup(char)
    return script


def _lookup(char: str) -> str:
    point = ord(char)
    for first, last, script in _RANGES:
        if first <= point <= last:
            return script
    return OTHER
