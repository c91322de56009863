"""Modern Standard Arabic or Moroccan Darija, for text in Arabic script.

Generic detectors answer ``ar`` for all Arabic script. Darija is told apart
by what MSA never writes: its function words (ديال, واش, بزاف, a hand-written
list) and its word formation on any verb or noun (morphology.py: the ka-
present كيدير, the ma...ch negation ماكاينش, -و plurals, -ليه clitics, گ).
MSA is told by what Darija rarely writes (الذي, سوف, ليس, لقد, tanween).
Words that the MSA dictionary (msa_dictionary.py) does not know at all are
a weak hint of dialect, never enough on their own.

With no evidence either way the answer is ``ar``: the formal written
language is the safer routing default. With thin evidence of Darija (a hint,
one weak form) the answer stays ``ar`` with ``ary-Arab`` as a secondary
language and a confidence near one half, so routing can offer both.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from normalizer.langid import morphology, msa_dictionary
from normalizer.langid.cleaning import arabic_key
from normalizer.langid.lexicon import lexicon

AR = "ar"
ARY = "ary-Arab"

# Clitics Darija glues to words in writing: و "and", ف "in", ل "to", ب "with",
# and their fused article forms; tried off only when the whole word is not MSA.
_PREFIXES = ("و", "فال", "بال", "لل", "ف", "ل", "ب")
_MIN_DARIJA = 1.0
# Words the MSA dictionary does not know: each a small hint of dialect,
# capped so that names, typos and loanwords cannot make a text Darija.
_UNKNOWN_WORD_HINT = 0.25
_UNKNOWN_HINT_CAP = 1.0
_MIN_UNKNOWN_LETTERS = 3
# Below this much Darija-side evidence nothing is said about Darija at all.
_THIN_DARIJA = 0.5
# The confidence of ``ar`` on thin evidence: from this (Darija barely ahead)...
_THIN_MOST = 0.6
# ... down to this (Darija a full point ahead, still short of clear forms).
_THIN_LEAST = 0.51
# A losing side with at least this much evidence is reported as secondary.
_SECONDARY_EVIDENCE = 1.0
_ELONGATED = re.compile(r"(\S)\1\1")
# Letters of Persian, Urdu and Pashto that Arabic and Darija do not use
# (گ and ڤ are left out: Moroccan writers use them for g and v).
_NON_ARABIC_LETTERS = frozenset("پچژکیۀٹڈڑںےھ")


@dataclass(frozen=True)
class ArabicEvidence:
    """Darija and MSA totals for a run of Arabic-script words."""

    darija: float
    msa: float
    foreign_words: int
    words: int
    unknown_words: int = 0

    @property
    def dialect_hint(self) -> float:
        """What words unknown to the MSA dictionary add to the Darija side."""
        return min(self.unknown_words * _UNKNOWN_WORD_HINT, _UNKNOWN_HINT_CAP)


@dataclass(frozen=True)
class ArabicDecision:
    """The tag, its confidence, and the other of ar/ary-Arab when it is worth naming."""

    tag: str
    confidence: float
    secondary: tuple[tuple[str, float], ...] = ()


def score_words(words: list[str], tanween: int = 0) -> ArabicEvidence:
    """Collect Darija and MSA evidence from Arabic-script words (single words and pairs)."""
    darija_list, msa_list = lexicon("ary_arab"), lexicon("msa")
    keys = [arabic_key(word) for word in words]
    darija = msa = 0.0
    unknown = 0
    for key in keys:
        bare = key[1:] if key.startswith("و") and len(key) > 3 else key
        msa_value = msa_list.get(key) or msa_list.get(bare, 0.0)
        msa += msa_value
        if msa_value:
            continue
        weight = _darija_weight(key, darija_list)
        darija += weight
        if not weight and len(key) >= _MIN_UNKNOWN_LETTERS and not msa_dictionary.knows_cached(key):
            unknown += 1
    for previous, key in itertools.pairwise(keys):
        pair = f"{previous} {key}"
        darija += darija_list.get(pair, 0.0) + morphology.split_negation(previous, key)
        msa += msa_list.get(pair, 0.0)
    # Tanween is a written-MSA habit; capped so one formal phrase cannot outvote words.
    msa += min(tanween, 3) * 0.5
    # Letters stretched by repetition (ياااربي) belong to chat writing, which
    # in Moroccan Arabic script is Darija; formal Arabic stretches with tatweel.
    if any(_ELONGATED.search(word) for word in words):
        darija += 1.0
    foreign = sum(1 for word in words if _NON_ARABIC_LETTERS.intersection(word))
    return ArabicEvidence(
        darija=darija, msa=msa, foreign_words=foreign, words=len(words), unknown_words=unknown
    )


def _darija_weight(key: str, darija_list: Mapping[str, float]) -> float:
    if key in darija_list:
        return darija_list[key]
    for prefix in _PREFIXES:
        rest = key[len(prefix) :]
        if key.startswith(prefix) and len(rest) >= 3 and rest in darija_list:
            return darija_list[rest]
    weight = morphology.word_weight(key)
    if not weight and key.startswith("و") and len(key) > 3:
        weight = morphology.word_weight(key[1:])
    return weight


def looks_non_arabic(evidence: ArabicEvidence) -> bool:
    """True for Persian/Urdu-like text: their letters in many words, no Darija at all."""
    return evidence.darija == 0 and evidence.foreign_words * 5 >= max(evidence.words, 1)


def decide(evidence: ArabicEvidence) -> ArabicDecision:
    """``ar`` or ``ary-Arab`` with a confidence; no evidence means ``ar``.

    Darija needs at least one clear form or word (``_MIN_DARIJA``) and more
    evidence than MSA, the dialect hint included. Short of that, when the
    Darija side still leads, the answer is ``ar`` with ``ary-Arab`` as
    secondary and a confidence that says the call is close.
    """
    darija = evidence.darija + evidence.dialect_hint
    msa = evidence.msa
    # Smoothed share of each side: 0.5 with no evidence, toward 1 with a lot.
    darija_share = (darija + 1.0) / (darija + msa + 2.0)
    if evidence.darija >= _MIN_DARIJA and darija > msa:
        secondary = ((AR, _share(msa, darija)),) if msa >= _SECONDARY_EVIDENCE else ()
        return ArabicDecision(ARY, round(min(0.99, darija_share), 3), secondary)
    if darija >= _THIN_DARIJA and darija > msa:
        # Thin evidence: the formal default, Darija named beside it, both near one
        # half; the further Darija leads, the closer the call (ar from 0.6 to 0.51).
        lead = min(1.0, (darija - msa) / _MIN_DARIJA)
        confidence = round(_THIN_MOST - (_THIN_MOST - _THIN_LEAST) * lead, 3)
        return ArabicDecision(AR, confidence, ((ARY, round(1.0 - confidence, 3)),))
    secondary = ((ARY, _share(darija, msa)),) if evidence.darija >= _SECONDARY_EVIDENCE else ()
    # The default answer is never below one half: a hint under the thin
    # threshold (one unknown word) does not make ar the less likely label.
    return ArabicDecision(AR, round(min(0.99, max(0.5, 1.0 - darija_share)), 3), secondary)


def _share(loser: float, winner: float) -> float:
    return round(loser / (loser + winner), 3)
