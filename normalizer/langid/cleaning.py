"""Cleaning for language identification: keep the words, drop the channel noise.

First step of the language step in ``normalizer/``. Complaints arrive with
things that carry no language (links, e-mail addresses, phone numbers,
amounts, complaint references, card fragments) and with spelling habits that
hide the language from a naive detector (Arabic diacritics and tatweel,
Arabic-Indic digits, presentation-form ligatures, Arabizi digits inside
Latin words). This module turns raw text into a list of word tokens, each
tagged with its script, so the later steps only ever see language evidence.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from normalizer.langid.scripts import ARABIC, LATIN, OTHER, TIFINAGH, script_of_word

# Arabic-Indic (U+0660..) and extended/Persian (U+06F0..) digits become ASCII
# so that a phone number written in either form is recognised as a number.
_DIGITS = str.maketrans(
    "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹",
    "01234567890123456789",
)

# Each run of name characters is tried from its first character only (the
# look-behinds): retrying from every position inside a long run made one
# 20 000-character token cost seconds.
_URL = re.compile(
    r"(?:https?://|ftp://|www\.)\S+"
    r"|(?<![\w.-])[\w.-]+\.(?:com|ma|fr|org|net|io|es|info)\b\S*",
    re.I,
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Shaped like a Cash Plus reference (normalizer/reference.py), checked or not:
# a mistyped reference is still not language evidence.
_REFERENCE = re.compile(r"\bCP[\s\-_./]*(?:[2-9A-HJKMNP-Z][\s\-]?){7}[2-9A-HJKMNP-Z]\b", re.I)
# Amounts and quantities glued to their unit (1500dh, 20€, 10h30, 2ème).
_UNIT_NUMBER = re.compile(
    r"^\d[\d.,]*(?:dh|dhs|mad|dirhams?|eur|euros?|usd|€|\$|k|er|ere|ème|eme|e|st|nd|rd|th"
    r"|h\d*|min|mn|j|kg|km|go|mo|g|%)$",
    re.I,
)
# Arabizi writes Arabic sounds with digits inside words: 3 (ع), 7 (ح), 9 (ق),
# 2 (ء), 5 (خ), 8 and 6 more rarely. 0, 1 and 4 are not letters there, so a
# token carrying them is an identifier, not a word.
_ARABIZI_DIGITS = frozenset("2356789")
_TOKEN_SPLIT = re.compile(r"[^\w\u0640'’\-]+")
_APOSTROPHE = re.compile(r"['’]")
# Short vowels, tanween, shadda, sukun, superscript alef and Quranic marks.
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_TANWEEN = re.compile("[\u064b-\u064d]")


@dataclass(frozen=True)
class Token:
    """A word kept as language evidence, with the script it is written in."""

    text: str
    script: str


@dataclass(frozen=True)
class CleanText:
    """What the detector works on: word tokens plus a few facts about the raw text."""

    tokens: tuple[Token, ...]
    tanween: int  # tanween marks seen before they were stripped: a written-MSA habit


def clean(text: str) -> CleanText:
    """Turn raw complaint text into script-tagged word tokens (never raises)."""
    text = unicodedata.normalize("NFKC", text).translate(_DIGITS)
    tanween = len(_TANWEEN.findall(text))
    text = _ARABIC_MARKS.sub("", text)
    # E-mail first: its domain would otherwise be eaten as a URL, leaving the user part.
    for pattern in (_EMAIL, _URL, _REFERENCE):
        text = pattern.sub(" ", text)
    tokens: list[Token] = []
    for raw in _TOKEN_SPLIT.split(text):
        # French elision (l'argent, j'ai) splits into its words; hyphens stay,
        # Berber clitics (yeffeɣ-d, ass-a) are evidence in themselves.
        for part in _APOSTROPHE.split(raw):
            token = _keep_word(part)
            if token is not None:
                tokens.append(token)
    return CleanText(tokens=tuple(tokens), tanween=tanween)


def _keep_word(raw: str) -> Token | None:
    word = raw.strip("'’-_")
    if not word:
        return None
    if not word.isalpha():
        if _UNIT_NUMBER.match(word):
            return None
        digits = [char for char in word if char.isdigit()]
        letters = sum(1 for char in word if char.isalpha())
        if not letters:
            return None
        if digits and (set(digits) - _ARABIZI_DIGITS or len(digits) > letters):
            return None
    script = script_of_word(word)
    if script == LATIN:
        word = word.lower()
    return Token(text=word, script=script)


def latin_key(word: str) -> str:
    """Lookup form of a Latin-script word: lower case, accents and dots below removed."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


_ARABIZI_RULES = (("sh", "ch"), ("ou", "u"), ("y", "i"), ("e", ""), ("x", "kh"))


def arabizi_key(word: str) -> str:
    """Spelling-tolerant lookup form for Arabizi: dyal/dial, bzzaf/bzaf, 3endi/3ndi meet."""
    key = latin_key(word).replace("-", "")
    for old, new in _ARABIZI_RULES:
        key = key.replace(old, new)
    collapsed = [char for index, char in enumerate(key) if index == 0 or char != key[index - 1]]
    return "".join(collapsed)


_ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ڭ": "گ"})


def arabic_key(word: str) -> str:
    """Lookup form of an Arabic-script word: one alef, ى as ي, ة as ه, no marks."""
    return _ARABIC_MARKS.sub("", word).translate(_ALEF)


__all__ = ["ARABIC", "LATIN", "OTHER", "TIFINAGH", "CleanText", "Token", "clean"]
