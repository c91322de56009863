"""Darija morphology in Arabic script: productive rules that apply to any word.

Part of the Arabic-script decider (arabic.py). A word list only knows the
words someone thought of; these rules know the forms Moroccan Arabic builds
on any verb or noun, so a verb nobody listed still counts:

- the ka-/ta- present on any imperfective verb: كنخدم، كتعرف، كيدير،
  كايدير، تايقول، كانمشيو;
- the ma...ch negation on any verb, in one word or two: ماكنعرفش، مابغاش،
  مخلصونيش، ما جاش، ما خلصوش;
- the -o/-ou plural of verbs without the MSA alef or nun: نشوفو، يديرو، خلصو،
  مشاو; the -o possessive on nouns (ديالو، خدمتو) shares the ending;
- the gha- future glued to the verb: غانمشي، غيدير، غنخلص;
- the preposition clitics -lih/-lik/-lia/-lina glued to a verb or standing
  alone: قاليه، صيفطليك، عطاتليا، ليه;
- -kom/-hom pronoun endings written with و: ديالكوم، عندهوم;
- fused في + article: فالدار، فالبنكة; د + article: دالبنكة;
- Moroccan letters: گ/ڭ for g (گال، ڭاع), ڤ for v (ڤيرمون).

Rules are data (``RULES``); each one says which MSA words of the same shape
it must leave alone. A rule marked ``msa_guard`` gives nothing for a word
that the MSA dictionary (msa_dictionary.py) knows: كتاب is not a ka- present,
مفتش is not a negation. These rules were written from the grammar of
Moroccan Arabic, not fitted to any evaluation data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from normalizer.langid import msa_dictionary


@dataclass(frozen=True)
class Rule:
    """One Darija word-formation rule, matched on the Arabic lookup key."""

    name: str
    pattern: re.Pattern[str]
    weight: float
    msa_guard: bool = True
    # Weight when the MSA dictionary knows the whole word (rules without the guard);
    # None: the rule's full weight either way.
    shared_weight: float | None = None
    # Whole keys of the same shape that MSA (or Darija and MSA alike) writes.
    exceptions: frozenset[str] = frozenset()


def _rule(
    name: str,
    pattern: str,
    weight: float,
    *,
    msa_guard: bool = True,
    shared_weight: float | None = None,
    exceptions: str = "",
) -> Rule:
    return Rule(
        name, re.compile(pattern), weight, msa_guard, shared_weight, frozenset(exceptions.split())
    )


# Person prefixes of the imperfective: ن (I/we), ت (you/she), ي (he/they).
RULES: tuple[Rule, ...] = (
    # The present: ka-/ta- + person + verb stem of two letters or more.
    _rule("present_ka", r"^كا?[نتي]\S{2,}$", 1.5, exceptions="كيفما كيفية كيان كيماوي"),
    _rule("present_ta", r"^تا[نتي]\S{2,}$", 1.5),
    # Negation: ما/م + verb + ش in one word (ماكنعرفش، مابغيتش، مجاش).
    _rule("negation_joined", r"^ما?\S{2,}ش$", 2.0, exceptions="مراكش"),
    # The future marker glued to the verb (غانمشي، غتدير، غيجي).
    _rule("future_gha", r"^غا?[نتي]\S{2,}$", 1.0, exceptions="غيره غيرها غيرهم"),
    # Plural verbs in -و (no alef): imperfective نشوفو/يديرو, perfective خلصو/مشاو.
    _rule("plural_imperfective_o", r"^[نتي]\S{2,}و$", 1.0, exceptions="يونيو يوليو"),
    # (راديو، فيديو: the [^يو] before the final و already leaves loanwords in -يو out.)
    _rule("plural_perfective_o", r"^\S{2,}[^يو]و$", 0.75),
    # Pronoun endings written -كوم/-هوم (ديالكوم، عندهوم; MSA -كم/-هم).
    _rule("pronoun_kom_hom", r"^\S{2,}[كه]وم$", 1.0),
    # Preposition clitics: ليه/ليك/ليا/لينا/ليكم/ليهم standing alone or glued
    # to a verb (قاليه، صيفطليك). عليه/إليه/لديه and nisba adverbs (حاليا،
    # فعليا) are MSA: excluded below and by the dictionary. A glued form that
    # is also an MSA stem in -ي with a pronoun (يليه، أهاليهم، مواليه) counts
    # for little: Darija's قاليه has the same letters as MSA قالي + ه.
    _rule(
        "clitic_li",
        r"^(?:\S+)?لي(?:ه|ها|هم|ك|كم|ا|نا)$",
        1.5,
        msa_guard=False,
        shared_weight=0.5,
        exceptions="عليه عليها عليهم عليك عليكم عليا علينا اليه اليها اليهم اليك اليكم الينا "
        "حواليه كليا",
    ),
    # في + article written as one word (فالدار) and د + article (دالبنكة).
    # MSA may write ف "so" + article (فالحكومة ...), hence the lower weight.
    _rule("fused_fal", r"^فال\S{2,}$", 0.75, msa_guard=False),
    _rule("fused_dal", r"^دال\S{2,}$", 0.75, msa_guard=False, exceptions="دالتها"),
    # Moroccan letters: گ (and ڭ, unified with it in the key) for g; ڤ for v.
    _rule("letter_gaf", r"گ", 1.5, msa_guard=False),
    _rule("letter_veh", r"ڤ", 1.0, msa_guard=False),
)
# Two-word negation: ما + word ending in ش (ما جاش، ما خلصوش).
NEGATION_PARTICLE = "ما"
_NEGATED = re.compile(r"^\S{2,}ش$")
NEGATION_SPLIT_WEIGHT = 2.0
# ما + an MSA word in ش (ما جاش "did not come" / MSA جاش "surged"): half as strong.
NEGATION_SPLIT_SHARED_WEIGHT = 1.0
# Adverbs in -يا from a nisba adjective (حالي -> حاليا) are MSA, not -lia.
_NISBA_ADVERB = re.compile(r"^(\S{2,}ل)يا$")


def matching_rules(key: str) -> list[Rule]:
    """The rules that ``key`` (an ``arabic_key``) satisfies, MSA guards applied."""
    found = [rule for rule in RULES if key not in rule.exceptions and rule.pattern.search(key)]
    if not found:
        return []
    if any(rule.msa_guard for rule in found) and msa_dictionary.knows_cached(key):
        found = [rule for rule in found if not rule.msa_guard]
    if _is_nisba_adverb(key):
        found = [rule for rule in found if rule.name != "clitic_li"]
    return found


# The clitics standing alone: a word of their own in Darija (قال ليه), whatever MSA spells alike.
_STANDALONE_CLITICS = frozenset(["ليه", "ليها", "ليهم", "ليك", "ليكم", "ليا", "لينا"])


def word_weight(key: str) -> float:
    """Darija evidence of one word from its shape: the strongest rule it satisfies."""
    rules = matching_rules(key)
    if not rules:
        return 0.0
    shared = key not in _STANDALONE_CLITICS and msa_dictionary.knows_cached(key)
    return max(_weight(rule, shared=shared) for rule in rules)


def _weight(rule: Rule, *, shared: bool) -> float:
    if shared and rule.shared_weight is not None:
        return rule.shared_weight
    return rule.weight


def split_negation(previous: str, key: str) -> float:
    """Evidence for ما + verb-ش written as two words (ما جاش), 0.0 otherwise."""
    if previous != NEGATION_PARTICLE or not _NEGATED.match(key):
        return 0.0
    if msa_dictionary.knows_cached(key):
        return NEGATION_SPLIT_SHARED_WEIGHT
    return NEGATION_SPLIT_WEIGHT


def _is_nisba_adverb(key: str) -> bool:
    match = _NISBA_ADVERB.match(key)
    if match is None:
        return False
    # The exact adjective, not a stem with clitics: قالي (قال + me) must not count.
    return match.group(1) + "ي" in msa_dictionary.words()
