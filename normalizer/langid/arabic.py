"""Modern Standard Arabic or Moroccan Darija, for text in Arabic script.

Generic detectors answer ``ar`` for all Arabic script. Darija is told apart
by what MSA never writes (ديال, واش, بزاف, the ka- present كيدير/كندير, the
ma...ch negation ماكاينش) and MSA by what Darija rarely writes (الذي, سوف,
ليس, لقد, tanween). With no evidence either way the answer is ``ar``: the
formal written language is the safer routing default.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from normalizer.langid.cleaning import arabic_key
from normalizer.langid.lexicon import lexicon

AR = "ar"
ARY = "ary-Arab"

# (pattern, weight): Darija verb morphology on the lookup key (alef unified,
# ة as ه). Each comes with the MSA words of the same shape it must not catch.
_DARIJA_SHAPES = (
    (re.compile(r"^ما\S{2,}ش$"), 2.0),
    (re.compile(r"^م[كتني]\S{2,}ش$"), 1.0),
    (re.compile(r"^كا[يتن]\S{3,}$"), 1.5),
    (re.compile(r"^كي(?!ف|ان|ميا|لو|س$|سه$|سان)[يتن]?\S{3,}$"), 1.0),
    (re.compile(r"^كن(?!يس|وز|ائس)\S{3,}$"), 1.0),
    (re.compile(r"^كت(?!اب|ب|يب|ل|ف|م)[تين]?\S{3,}$"), 1.0),
    (re.compile(r"^غا[نتي](?!ه|ات|ب)\S{2,}$"), 1.0),
    # گ/ڭ write the Moroccan g (گال, ڭاع); MSA has no g.
    (re.compile(r"گ"), 1.5),
    # Plural verbs end in -و without alef (نشوفو, تديرو, مشاو); MSA writes -ون/-وا.
    (re.compile(r"^[نتي](?!ونيو|وليو)\S{3,}و$"), 1.0),
    (re.compile(r"^\S{2,}او$"), 1.0),
    # Possessive -و on a feminine noun (خدمتو, بلاصتو); MSA writes -ته.
    (re.compile(r"^\S{2,}تو$"), 1.0),
    # في + article fused (فالدار, فالمغرب) is written Darija.
    (re.compile(r"^فال\S{3,}$"), 1.0),
)
# Clitics Darija glues to words in writing: و "and", ف "in", ل "to", ب "with",
# and their fused article forms; tried off only when the whole word is not MSA.
_PREFIXES = ("و", "فال", "بال", "لل", "ف", "ل", "ب")
# Letters of Persian, Urdu and Pashto that Arabic and Darija do not use
# (گ is left out: Moroccan writers use it for the g sound).
_MIN_DARIJA = 1.0
_ELONGATED = re.compile(r"(\S)\1\1")
_NON_ARABIC_LETTERS = frozenset("پچژکیۀٹڈڑںےھ")


@dataclass(frozen=True)
class ArabicEvidence:
    """Darija and MSA totals for a run of Arabic-script words."""

    darija: float
    msa: float
    foreign_words: int
    words: int


def score_words(words: list[str], tanween: int = 0) -> ArabicEvidence:
    """Collect Darija and MSA evidence from Arabic-script words (single words and pairs)."""
    darija_list, msa_list = lexicon("ary_arab"), lexicon("msa")
    keys = [arabic_key(word) for word in words]
    darija = msa = 0.0
    for key in keys:
        bare = key[1:] if key.startswith("و") and len(key) > 3 else key
        msa_value = msa_list.get(key) or msa_list.get(bare, 0.0)
        msa += msa_value
        if not msa_value:
            darija += _darija_weight(key, darija_list)
    for pair in map(" ".join, itertools.pairwise(keys)):
        darija += darija_list.get(pair, 0.0)
        msa += msa_list.get(pair, 0.0)
    # Tanween is a written-MSA habit; capped so one formal phrase cannot outvote words.
    msa += min(tanween, 3) * 0.5
    # Letters stretched by repetition (ياااربي) belong to chat writing, which
    # in Moroccan Arabic script is Darija; formal Arabic stretches with tatweel.
    if any(_ELONGATED.search(word) for word in words):
        darija += 1.0
    foreign = sum(1 for word in words if _NON_ARABIC_LETTERS.intersection(word))
    return ArabicEvidence(darija=darija, msa=msa, foreign_words=foreign, words=len(words))


def _darija_weight(key: str, darija_list: Mapping[str, float]) -> float:
    if key in darija_list:
        return darija_list[key]
    for prefix in _PREFIXES:
        rest = key[len(prefix) :]
        if key.startswith(prefix) and len(rest) >= 3 and rest in darija_list:
            return darija_list[rest]
    for pattern, value in _DARIJA_SHAPES:
        if pattern.search(key):
            return value
    return 0.0


def looks_non_arabic(evidence: ArabicEvidence) -> bool:
    """True for Persian/Urdu-like text: their letters in many words, no Darija at all."""
    return evidence.darija == 0 and evidence.foreign_words * 5 >= max(evidence.words, 1)


def decide(evidence: ArabicEvidence) -> tuple[str, float]:
    """``ar`` or ``ary-Arab`` with a confidence; no evidence means ``ar``."""
    darija, msa = evidence.darija, evidence.msa
    # One weak Darija-looking word is not enough to leave the default.
    tag = ARY if darija >= _MIN_DARIJA and darija > msa else AR
    # Smoothed share of the winning side's evidence: 0.5 with none, toward 1 with a lot.
    confidence = (max(darija, msa) + 1.0) / (darija + msa + 2.0)
    return tag, round(min(0.99, confidence), 3)
