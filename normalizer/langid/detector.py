"""Language identification for complaints: one BCP 47 tag, how sure, and why.

This is the language step of ``normalizer/``: it runs on the clean body of a
complaint and its answer becomes the message's ``language`` field, which
downstream teams use to route complaints to agents. The steps are, in order:
clean (cleaning.py) -> split by script (scripts.py) -> decide the main
script's language with the decider registered for it (``_DECIDERS``) ->
tag every word and report the other languages present (mixing.py).

``detect`` never raises: unusable input gives ``und``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from normalizer.langid import arabic, backends, latin
from normalizer.langid.backends import Ranked, langdetect_rank, lingua_rank
from normalizer.langid.cleaning import CleanText, Token, clean
from normalizer.langid.mixing import secondary_shares
from normalizer.langid.scripts import ARABIC, LATIN, OTHER, TIFINAGH

logger = logging.getLogger("normalizer.langid")

UND = "und"
ZGH = "zgh-Tfng"
_ROMANCE = frozenset(latin.ROMANCE)
_DARIJA = (arabic.ARY, latin.ARY)
_MATRIX_SHARE = 1 / 3
# Fewer letters than this is not enough to say anything ("a", "?").
_MIN_LETTERS = 3
# lingua and langdetect cost grows with length; a few hundred characters
# identify a language as well as a whole letter does.
_STATISTICAL_CHARS = 300
# Combined probability above which lingua's fast mode is trusted.
_SURE = 0.9


@dataclass(frozen=True)
class SecondaryLanguage:
    """Another language present in mixed text, with its share of the words."""

    tag: str
    confidence: float


@dataclass(frozen=True)
class LanguageGuess:
    """The language of a complaint as downstream systems receive it."""

    tag: str
    confidence: float
    method: str
    secondary: tuple[SecondaryLanguage, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready form: ``{"tag", "confidence", "method", "secondary": [...]}``."""
        return {
            "tag": self.tag,
            "confidence": self.confidence,
            "method": self.method,
            "secondary": [{"tag": s.tag, "confidence": s.confidence} for s in self.secondary],
        }


@dataclass(frozen=True)
class _Decision:
    tag: str
    confidence: float
    method: str
    word_tags: tuple[str, ...]
    # Other languages the decider itself names (a close ar/ary-Arab call), with shares.
    alternatives: tuple[tuple[str, float], ...] = ()


_EMPTY = LanguageGuess(tag=UND, confidence=0.0, method="empty")


def detect(text: str) -> LanguageGuess:
    """Identify the language of ``text``; never raises (``und`` when there is nothing to go on)."""
    try:
        return _detect(text)
    except Exception:
        # A language tag is never worth losing a complaint over: log and go on.
        logger.exception("language identification failed; answering und")
        return LanguageGuess(tag=UND, confidence=0.0, method="error")


def warm_up() -> None:
    """Load word lists and statistical models ahead of the first complaint."""
    backends.warm_up()
    for sample in ("bonjour", "بغيت", "ⴰⵣⵓⵍ", "salam 3afak", "здравствуйте"):
        detect(sample)


def _detect(text: str) -> LanguageGuess:
    if not isinstance(text, str):
        return _EMPTY
    cleaned = clean(text)
    groups = _group_by_script(cleaned.tokens)
    letters = {script: sum(len(t.text) for t in tokens) for script, tokens in groups.items()}
    if sum(letters.values()) < _MIN_LETTERS:
        return _EMPTY
    main = max(letters, key=lambda script: (letters[script], script))
    decision = _DECIDERS[main](groups[main], cleaned, True)
    word_tags = list(decision.word_tags)
    for script, tokens in groups.items():
        if script != main:
            word_tags.extend(_DECIDERS[script](tokens, cleaned, False).word_tags)
    decision = _matrix_language(decision, word_tags)
    secondary = _secondary(decision, secondary_shares(word_tags, decision.tag))
    return LanguageGuess(decision.tag, decision.confidence, decision.method, secondary)


def _secondary(
    decision: _Decision, shares: list[tuple[str, float]]
) -> tuple[SecondaryLanguage, ...]:
    """Languages mixed in the words, then the one the decider found close (ar/ary-Arab)."""
    merged = dict(shares)
    for tag, share in decision.alternatives:
        if tag != decision.tag:
            merged[tag] = max(merged.get(tag, 0.0), share)
    ranked = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return tuple(SecondaryLanguage(tag, share) for tag, share in ranked)


def _matrix_language(decision: _Decision, word_tags: list[str]) -> _Decision:
    """Darija is the frame of Moroccan code-switching: French words slot into it.

    When the main script's words came out French/English/Spanish but a third
    or more of all words are Darija (in either script), the complaint is
    Darija with French in it, and agents who speak Darija should get it.
    """
    if decision.tag not in _ROMANCE:
        return decision
    counts = {tag: word_tags.count(tag) for tag in _DARIJA}
    tag = max(counts, key=lambda candidate: (counts[candidate], candidate))
    share = counts[tag] / max(len(word_tags), 1)
    if share < _MATRIX_SHARE:
        return decision
    return _Decision(tag, round(share, 3), "mixed", decision.word_tags)


def _group_by_script(tokens: tuple[Token, ...]) -> dict[str, list[Token]]:
    groups: dict[str, list[Token]] = {}
    for token in tokens:
        groups.setdefault(token.script, []).append(token)
    return groups


def _decide_tifinagh(tokens: list[Token], cleaned: CleanText, main: bool) -> _Decision:
    return _Decision(ZGH, 0.99, "script", (ZGH,) * len(tokens))


def _decide_arabic(tokens: list[Token], cleaned: CleanText, main: bool) -> _Decision:
    evidence = arabic.score_words([t.text for t in tokens], cleaned.tanween)
    if main and arabic.looks_non_arabic(evidence):
        return _decide_other(tokens, cleaned, main)
    answer = arabic.decide(evidence)
    method = "lexicon" if evidence.darija or evidence.msa or evidence.unknown_words else "script"
    tag = answer.tag
    return _Decision(tag, answer.confidence, method, (tag,) * len(tokens), answer.secondary)


def _decide_latin(tokens: list[Token], cleaned: CleanText, main: bool) -> _Decision:
    words = [t.text for t in tokens]
    evidence = latin.score_words(words)
    local = latin.local_decision(evidence)
    if local is not None:
        tag, confidence = local
        return _Decision(tag, confidence, "lexicon", _fill(evidence.word_tags, tag))
    if not main:
        # A Latin aside inside Arabic text: word lists are enough to name it.
        aside = max(latin.ROMANCE, key=lambda language: evidence.totals[language])
        tag = aside if evidence.totals[aside] > 0 else UND
        return _Decision(tag, 0.5, "lexicon", _fill(evidence.word_tags, tag))
    romance = latin.romance_decision(evidence, len(words))
    if romance is not None:
        tag, confidence = romance
        return _Decision(tag, confidence, "lexicon", _fill(evidence.word_tags, tag))
    if evidence.totals[latin.OTHER] > 0:
        # Turkish, German, Polish letters: none of lingua's few languages; ask the backbone.
        tag, confidence, method = _backbone(_head(words))
        return _Decision(tag, confidence, method, (tag,) * len(words))
    lexical = {language: evidence.totals[language] for language in latin.ROMANCE}
    tag, confidence, method = _statistical_latin(_head(words), lexical)
    return _Decision(tag, confidence, method, _fill(evidence.word_tags, tag))


def _statistical_latin(text: str, lexical: dict[str, float]) -> tuple[str, float, str]:
    # The fast trigram pass settles most texts; only doubtful ones pay for the full models.
    best = _combine(lingua_rank(text, low_accuracy=True), lexical)
    if best is None or best.code not in _ROMANCE or best.probability < _SURE:
        best = _combine(lingua_rank(text), lexical)
    if best is not None and best.code in _ROMANCE:
        return best.code, round(best.probability, 3), "lingua"
    tag, confidence, method = _backbone(text)
    if tag == UND and best is not None:
        return best.code, round(best.probability, 3), "lingua"
    return tag, confidence, method


def _backbone(text: str) -> tuple[str, float, str]:
    ranked = langdetect_rank(text)
    if not ranked:
        return UND, 0.0, "langdetect"
    return ranked[0].code, round(ranked[0].probability, 3), "langdetect"


def _combine(ranked: list[Ranked], lexical: dict[str, float]) -> Ranked | None:
    """lingua's probabilities nudged by word-list evidence for fr/en/es.

    lingua spreads short sentences over close languages (es/pt/it); one
    function word of ours is worth a factor e in its favour (log-linear mix).
    """
    if not ranked:
        return None
    scores = {r.code: math.log(r.probability + 0.01) + lexical.get(r.code, 0.0) for r in ranked}
    code = max(scores, key=lambda c: (scores[c], c))
    total = sum(math.exp(value) for value in scores.values())
    return Ranked(code, math.exp(scores[code]) / total)


def _head(words: list[str]) -> str:
    """The first words, up to _STATISTICAL_CHARS: enough to identify, bounded in cost."""
    text = " ".join(words)
    return text if len(text) <= _STATISTICAL_CHARS else text[:_STATISTICAL_CHARS].rsplit(" ", 1)[0]


def _decide_other(tokens: list[Token], cleaned: CleanText, main: bool) -> _Decision:
    ranked = langdetect_rank(_head([t.text for t in tokens]))
    if not ranked:
        return _Decision(UND, 0.0, "langdetect", (UND,) * len(tokens))
    tag = ranked[0].code
    return _Decision(tag, round(ranked[0].probability, 3), "langdetect", (tag,) * len(tokens))


def _fill(word_tags: tuple[str | None, ...], default: str) -> tuple[str, ...]:
    return tuple(tag or default for tag in word_tags)


_DECIDERS: dict[str, Callable[[list[Token], CleanText, bool], _Decision]] = {
    TIFINAGH: _decide_tifinagh,
    ARABIC: _decide_arabic,
    LATIN: _decide_latin,
    OTHER: _decide_other,
}
