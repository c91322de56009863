"""Word lists that back the language step, loaded once and looked up by key.

Each list in ``data/`` is one language: ``ary_latn`` (Darija in Arabizi),
``ary_arab`` (Darija in Arabic script), ``msa`` (Modern Standard Arabic
markers), ``ber_latn`` (Tamazight/Kabyle in Latin script) and ``fr``, ``en``,
``es`` (function words and complaint vocabulary). Their provenance is in
``data/PROVENANCE.md``, the licences of derived lists in ``data/SOURCES``.
Every entry goes through the same key function as the words it is compared
with, so spelling variants meet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources

from normalizer.langid.cleaning import arabic_key, arabizi_key, latin_key
from normalizer.langid.darija import load_verb_forms

Lexicon = Mapping[str, float]

# list name -> key function; the table is the whole configuration.
KEYS: dict[str, Callable[[str], str]] = {
    "ary_latn": arabizi_key,
    "ber_latn": latin_key,
    "fr": latin_key,
    "en": latin_key,
    "es": latin_key,
    "ary_arab": arabic_key,
    "msa": arabic_key,
}

# Lists completed by words derived from the arabizi package (Apache-2.0,
# scripts/langid-derive-arabizi, data/SOURCES), weight 1 each.
DERIVED = frozenset({"ary_latn", "ary_arab"})
_LOCK = threading.Lock()


def parse_lexicon(lines: list[str], key: Callable[[str], str]) -> dict[str, float]:
    """Parse ``word [weight]`` lines; ``#`` starts a comment; the last weight wins."""
    entries: dict[str, float] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, weight = line.rpartition(" ")
        if not word or not _is_number(weight):
            word, weight = line, "1"
        entries[key(word)] = float(weight)
    return entries


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@cache
def _load(name: str) -> dict[str, float]:
    source = resources.files("normalizer.langid") / "data" / f"{name}.txt"
    entries = parse_lexicon(source.read_text(encoding="utf-8").splitlines(), KEYS[name])
    if name in DERIVED:
        # Lists derived from licensed packages fill in; a hand-written weight always wins.
        derived = resources.files("normalizer.langid") / "data" / f"{name}_arabizi.txt"
        lines = derived.read_text(encoding="utf-8").splitlines()
        entries = {**parse_lexicon(lines, KEYS[name]), **entries}
    if name == "ary_arab":
        # Generated verb forms fill in; a hand-written weight always wins.
        verbs = load_verb_forms(set(_load("msa")))
        entries = {**verbs, **entries}
    return entries


def lexicon(name: str) -> Lexicon:
    """The word list ``name`` as ``{key: weight}`` (loaded on first use, thread-safe)."""
    with _LOCK:
        return _load(name)


def weight(name: str, word: str) -> float:
    """Weight of ``word`` in list ``name``; 0.0 when absent."""
    return lexicon(name).get(KEYS[name](word), 0.0)
