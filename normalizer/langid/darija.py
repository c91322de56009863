"""Darija verb forms, generated from the stems in ``data/ary_arab_verbs.txt``.

Writing every conjugated form of every verb by hand would be long and full
of gaps; the stems are hand-written and this module inflects them the way
Darija does (perfective persons, imperfective with ن/ت/ي, plural -و, the
ka- present, the ما...ش negation). Forms that are also Modern Standard
Arabic markers are dropped, and forms that the MSA dictionary knows
(ضربت، يدير) count less, so mostly Darija-specific spellings count as
evidence.
"""

from __future__ import annotations

from importlib import resources

from normalizer.langid import msa_dictionary
from normalizer.langid.cleaning import arabic_key

# Weight of a generated verb form: as strong as a hand-listed Darija word
# of medium strength, because a few stems (دار, ضرب) have MSA homographs.
FORM_WEIGHT = 1.5
# A generated form that is also an MSA word (msa_dictionary.py) is a weak hint only.
SHARED_FORM_WEIGHT = 0.5

_PERFECTIVE_3 = ("", "ت", "و")
_PERFECTIVE_12 = ("ت", "تي", "نا", "تو")
_IMPERFECTIVE = ("ن", "ت", "ي")
_PRESENT = ("ك", "كا", "كي", "تا")


def conjugate(third: str, short: str, imperfective: str) -> set[str]:
    """Darija forms of one verb from its three stems (see the data file's columns)."""
    forms = {third + ending for ending in _PERFECTIVE_3}
    forms |= {short + ending for ending in _PERFECTIVE_12}
    persons = {prefix + imperfective for prefix in _IMPERFECTIVE}
    forms |= persons | {form + "و" for form in persons}
    forms |= {marker + form for marker in _PRESENT for form in persons}
    forms |= {imperfective, imperfective + "ي", imperfective + "و"}
    forms |= {"ما" + form + "ش" for form in (third, short + "ت", *persons)}
    return {arabic_key(form) for form in forms}


def load_verb_forms(msa_words: set[str]) -> dict[str, float]:
    """Every generated form that is not also an MSA word, with its weight."""
    source = resources.files("normalizer.langid") / "data" / "ary_arab_verbs.txt"
    forms: dict[str, float] = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) != 3:
            continue
        for form in conjugate(*fields) - msa_words:
            shared = msa_dictionary.knows(form)
            forms[form] = SHARED_FORM_WEIGHT if shared else FORM_WEIGHT
    return forms
