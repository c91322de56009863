"""Evidence for the languages written in Latin script, word by word.

Darija in Arabizi and Tamazight/Kabyle in Latin letters are what generic
detectors get wrong (they call them Somali, Indonesian or English), so they
are scored first from word lists and spelling habits that French, English
and Spanish do not share: digits for sounds (3lach, 7ta), the ma...ch
negation, the Berber letters ɣ ɛ č ḥ ṭ, hyphenated Berber clitics, word-initial
double consonants. Each word gets a score per language; the sums decide
whether the text is Darija, Tamazight, or one of the languages that lingua
and langdetect are good at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from normalizer.langid.cleaning import arabizi_key, latin_key
from normalizer.langid.lexicon import lexicon

ARY = "ary-Latn"
BER = "ber-Latn"
FR, EN, ES = "fr", "en", "es"
LOCAL = (ARY, BER)
ROMANCE = (FR, EN, ES)
LANGUAGES = LOCAL + ROMANCE
_LIST = {ARY: "ary_latn", BER: "ber_latn", FR: "fr", EN: "en", ES: "es"}

_ARABIZI = re.compile(r"[a-z][2356789]|[2356789][a-z]")
_NEGATION = re.compile(r"^ma[a-z0-9]{2,}(?:ch|sh|x)$")
_PRESENT = re.compile(r"^ka[nty][a-z0-9]{3,}$")
_BERBER_LETTERS = frozenset("ɣɛčǧḥṭḍṣẓṛţγ")
_BERBER_CLITIC = re.compile(
    r"-(?:d|t|tt|as|asen|aɣ|iyi|ik|ikem|im|is|it|nni|a|agi|nneɣ|nnek|nnem|nnes|iw|inu|ines|ntsen|en)$"
)
# A doubled consonant opening a word (tteddun, ssneɣ, ddar) is normal in
# Berber and Darija and almost never seen in French, English or Spanish;
# "ll" is excluded because Spanish opens words with it.
_GEMINATE_START = re.compile(r"^([bcdfgkmnqrstwxzɣ])\1")
# A text of at least this many words whose best Romance score reaches
# _DECISIVE_SCORE, at least twice the runner-up's, is decided by the lists.
_DECISIVE_WORDS = 6
# Word scores kept for reuse: far more than a day's distinct words; short words only.
_WORDS_REMEMBERED = 65_536
_LONGEST_REMEMBERED = 40
_DECISIVE_SCORE = 4.0
# Letters of other Latin alphabets (Turkish, German, Nordic, Central European):
# a word carrying one is neither Darija nor Tamazight, whatever its shape.
_OTHER_LATIN = frozenset("ıİğşäöüßøåæłőűąęřěůžšćśźżățș")
OTHER = "other"
_FRENCH_ACCENTS = frozenset("èêàçùûôîœëï")
_SPANISH_MARKS = frozenset("ñáíóú¿¡")


@dataclass(frozen=True)
class LatinEvidence:
    """Per-language totals, and the language each word clearly belongs to (or None)."""

    totals: dict[str, float]
    word_tags: tuple[str | None, ...]


def score_words(words: list[str]) -> LatinEvidence:
    """Score Latin-script words for Darija, Tamazight, French, English and Spanish."""
    totals = dict.fromkeys((*LANGUAGES, OTHER), 0.0)
    tags: list[str | None] = []
    for word in words:
        scores = word_scores(word)
        for language, value in scores.items():
            totals[language] += value
        tags.append(_clear_winner(scores))
    return LatinEvidence(totals=totals, word_tags=tuple(tags))


def word_scores(word: str) -> Mapping[str, float]:
    """Evidence one word gives each Latin-script language (missing means 0).

    Remembered per word: complaints repeat the same few thousand words, and
    scoring one (keys, lists, spelling rules) costs more than the rest of
    the step. The answer depends on the word alone, so it is shared and
    must not be changed by callers. Long words are not remembered (bounded
    memory whatever a sender writes).
    """
    if len(word) > _LONGEST_REMEMBERED:
        return _score_word(word)
    return _remembered_scores(word)


def _score_word(word: str) -> dict[str, float]:
    plain = latin_key(word)
    head = plain.split("-", 1)[0]
    scores: dict[str, float] = {}
    for language in (*ROMANCE, BER):
        value = lexicon(_LIST[language]).get(plain) or lexicon(_LIST[language]).get(head, 0.0)
        if value:
            scores[language] = value
    ary = lexicon(_LIST[ARY]).get(arabizi_key(word), 0.0)
    if ary:
        scores[ARY] = ary
    _add_shape_evidence(word, plain, scores)
    return scores


_remembered_scores = lru_cache(maxsize=_WORDS_REMEMBERED)(_score_word)


def _add_shape_evidence(word: str, plain: str, scores: dict[str, float]) -> None:
    known_romance = any(language in scores for language in ROMANCE)
    if _ARABIZI.search(plain):
        scores[ARY] = max(scores.get(ARY, 0.0), 2.0)
    elif not known_romance and (_NEGATION.match(plain) or _PRESENT.match(plain)):
        scores[ARY] = max(scores.get(ARY, 0.0), 1.5)
    if _BERBER_LETTERS.intersection(word):
        scores[BER] = scores.get(BER, 0.0) + 2.0
    if "-" in word and _BERBER_CLITIC.search(word):
        scores[BER] = scores.get(BER, 0.0) + 1.5
    if not known_romance and _GEMINATE_START.match(plain):
        scores[BER] = scores.get(BER, 0.0) + 0.5
        scores[ARY] = scores.get(ARY, 0.0) + 0.5
    if _OTHER_LATIN.intersection(word):
        scores[OTHER] = 2.0
        scores.pop(ARY, None)
    if _FRENCH_ACCENTS.intersection(word):
        scores[FR] = scores.get(FR, 0.0) + 0.5
    if _SPANISH_MARKS.intersection(word):
        scores[ES] = scores.get(ES, 0.0) + 0.5


def _clear_winner(scores: Mapping[str, float]) -> str | None:
    if not scores:
        return None
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    best, value = ranked[0]
    if best == OTHER or value < 1.0 or (len(ranked) > 1 and ranked[1][1] >= value):
        return None
    return best


def local_decision(evidence: LatinEvidence) -> tuple[str, float] | None:
    """Darija or Tamazight when their evidence beats the other languages', else None.

    Returns the tag and a confidence. Ties between the two local languages go
    to Darija, by far the more frequent of the two in Cash Plus complaints.
    """
    totals = evidence.totals
    local = max(LOCAL, key=lambda language: (totals[language], language == ARY))
    romance = max(totals[language] for language in (*ROMANCE, OTHER))
    best = totals[local]
    if best < 1.0 or best <= romance:
        return None
    others = sorted(
        (value for language, value in totals.items() if language != local), reverse=True
    )
    confidence = best / (best + others[0] + 1.0)
    return local, round(min(0.99, max(0.34, confidence)), 3)


def romance_decision(evidence: LatinEvidence, words: int) -> tuple[str, float] | None:
    """French, English or Spanish from word lists alone, when they leave no doubt.

    Long sentences full of function words do not need a statistical model
    (and cost it the most time); short ones do, so they are left to lingua.
    """
    if words < _DECISIVE_WORDS:
        return None
    ranked = sorted(ROMANCE, key=lambda language: -evidence.totals[language])
    best, second = (evidence.totals[language] for language in ranked[:2])
    if best < _DECISIVE_SCORE or best < 2 * second + 1:
        return None
    return ranked[0], round(min(0.99, best / (best + second + 1.0)), 3)
