"""Is this Arabic-script word Modern Standard Arabic? A dictionary answer, with MSA affixes.

Part of the Arabic-script decider (arabic.py). The word set is derived from
Debian's hunspell-ar (Ayaspell; licence in data/SOURCES) by
``scripts/langid-derive-msa`` and shipped in ``data/msa_hunspell.txt``, so
the runtime does not need the Debian package. Ayaspell lists stems with
affix flags; instead of expanding every flag (millions of forms), a word is
looked up with the clitics and endings MSA attaches peeled off: و/ف, then
ب/ل/ك/س, then the article; pronoun, plural and feminine endings.

Two uses, both weak on their own: a Darija-shaped word that MSA also writes
(كتاب looks like the ka- present) is not Darija evidence; a word MSA does not
know at all is a small hint of dialect.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources

# Outermost first; each layer optional. ك as a preposition only before the
# article (كالبيت): bare ك + verb is the Darija present (كنعرف), not MSA.
_CONJUNCTIONS = ("", "و", "ف")
_PARTICLES = ("", "ب", "ل", "س", "كال", "بال", "لل", "ال")
_ARTICLE = ("", "ال")
# Pronoun suffixes, then number/gender endings; ة is ه in the lookup key.
_PRONOUNS = ("", "ه", "ها", "هم", "هما", "هن", "ك", "كم", "كما", "كن", "ي", "ني", "نا")
_ENDINGS = ("", "ه", "ات", "ان", "ين", "ون", "وا", "تم", "تن", "ت", "يه", "يات", "يين", "ا")
_MIN_STEM = 2
_LOCK = threading.Lock()


@cache
def _words() -> frozenset[str]:
    source = resources.files("normalizer.langid") / "data" / "msa_hunspell.txt"
    lines = source.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def words() -> frozenset[str]:
    """The derived MSA word set (loaded on first use, thread-safe)."""
    with _LOCK:
        return _words()


def knows(key: str) -> bool:
    """True when ``key`` (an ``arabic_key``) is an MSA word, possibly with MSA clitics."""
    return _knows(key, words())


@cache
def _knows_cached(key: str) -> bool:
    return _knows(key, words())


def knows_cached(key: str) -> bool:
    """``knows`` with a bounded-effort memo for the hot path (words repeat a lot)."""
    if _knows_cached.cache_info().currsize > 200_000:
        _knows_cached.cache_clear()
    return _knows_cached(key)


def _knows(key: str, vocabulary: frozenset[str]) -> bool:
    if key in vocabulary:
        return True
    for stem in _stems(key):
        if stem in vocabulary:
            return True
        # ة before a pronoun is written ت (بطاقتي = بطاقة + ي).
        if stem.endswith("ت") and stem[:-1] + "ه" in vocabulary:
            return True
    return False


def _stems(key: str) -> list[str]:
    stems = []
    for front in _prefix_splits(key):
        for back in _suffix_splits(front):
            if len(back) >= _MIN_STEM:
                stems.append(back)
    return stems


def _prefix_splits(key: str) -> list[str]:
    rests = []
    for conjunction in _CONJUNCTIONS:
        if not key.startswith(conjunction):
            continue
        after_conjunction = key[len(conjunction) :]
        for particle in _PARTICLES:
            if not after_conjunction.startswith(particle):
                continue
            after_particle = after_conjunction[len(particle) :]
            for article in _ARTICLE:
                if after_particle.startswith(article) and not (particle.endswith("ال") and article):
                    rests.append(after_particle[len(article) :])
    return rests


def _suffix_splits(word: str) -> list[str]:
    rests = []
    for pronoun in _PRONOUNS:
        if pronoun and not word.endswith(pronoun):
            continue
        before_pronoun = word[: len(word) - len(pronoun)]
        for ending in _ENDINGS:
            if ending and not before_pronoun.endswith(ending):
                continue
            rests.append(before_pronoun[: len(before_pronoun) - len(ending)])
    return rests
