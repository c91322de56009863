"""Darija word-formation rules in Arabic script, each on forms it must and must not catch.

The cases are written from the grammar of Moroccan Arabic (verbs nobody
listed, MSA words of the same shape), not taken from any evaluation data.
"""

from __future__ import annotations

import pytest

from normalizer.langid import msa_dictionary
from normalizer.langid.cleaning import arabic_key
from normalizer.langid.morphology import RULES, matching_rules, split_negation, word_weight

RULES_BY_NAME = {rule.name: rule for rule in RULES}


def rule_names(word: str) -> set[str]:
    return {rule.name for rule in matching_rules(arabic_key(word))}


def test_every_exception_is_a_word_its_rule_would_catch() -> None:
    dead = [(rule.name, word) for rule in RULES for word in rule.exceptions]
    assert [pair for pair in dead if not RULES_BY_NAME[pair[0]].pattern.search(pair[1])] == []


def test_every_rule_has_a_name_of_its_own() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("word", ["كنخدم", "كتعرف", "كيدير", "كايدير", "كانمشيو", "كنصيفط"])
def test_ka_present_on_any_verb(word: str) -> None:
    assert "present_ka" in rule_names(word)


@pytest.mark.parametrize("word", ["تايقول", "تانخلص", "تاتعرفي"])
def test_ta_present_on_any_verb(word: str) -> None:
    assert "present_ta" in rule_names(word)


@pytest.mark.parametrize("word", ["كتاب", "كتبت", "كنت", "كيف", "كيان", "كتيبة"])
def test_msa_words_shaped_like_the_present_are_left_alone(word: str) -> None:
    assert word_weight(arabic_key(word)) == 0.0


@pytest.mark.parametrize("word", ["ماكنعرفش", "مابغاش", "مجاش", "ماخلصونيش", "مكاينش"])
def test_joined_negation_on_any_verb(word: str) -> None:
    assert "negation_joined" in rule_names(word)


@pytest.mark.parametrize("word", ["مفتش", "معاش", "مدهش", "مراكش", "مشمش"])
def test_msa_words_in_mim_shin_are_not_negations(word: str) -> None:
    assert "negation_joined" not in rule_names(word)


@pytest.mark.parametrize("verb", ["جاش", "خلصوش", "وصلنيش", "عرفتش"])
def test_negation_written_as_two_words(verb: str) -> None:
    assert split_negation("ما", arabic_key(verb)) >= 1.0


def test_negation_needs_the_particle_before_it() -> None:
    assert split_negation("لا", arabic_key("خلصوش")) == 0.0
    assert split_negation("ما", arabic_key("خلصو")) == 0.0


@pytest.mark.parametrize("word", ["نشوفو", "يديرو", "تخلصو", "نتسناو"])
def test_imperfective_plural_in_o(word: str) -> None:
    assert "plural_imperfective_o" in rule_names(word)


@pytest.mark.parametrize("word", ["خلصو", "مشاو", "صيفطو", "ديالو", "خدمتو"])
def test_perfective_plural_and_possessive_in_o(word: str) -> None:
    assert "plural_perfective_o" in rule_names(word)


@pytest.mark.parametrize("word", ["يدعو", "يبدو", "نحو", "يونيو", "فيديو", "أبو"])
def test_msa_words_in_waw_are_not_plurals(word: str) -> None:
    assert word_weight(arabic_key(word)) == 0.0


@pytest.mark.parametrize("word", ["غانمشي", "غيدير", "غنخلص", "غاتعيط"])
def test_future_gha_glued_to_the_verb(word: str) -> None:
    assert "future_gha" in rule_names(word)


@pytest.mark.parametrize("word", ["غير", "غيرة", "غنية"])
def test_msa_words_in_ghayn_are_not_futures(word: str) -> None:
    assert "future_gha" not in rule_names(word)


@pytest.mark.parametrize("word", ["ليه", "ليك", "ليا", "قاليه", "صيفطليك", "عطاتليا", "جابلينا"])
def test_preposition_clitics_lih_lik_lia(word: str) -> None:
    assert "clitic_li" in rule_names(word)


@pytest.mark.parametrize("word", ["عليه", "إليه", "عليك", "لديه", "حاليا", "فعليا", "عمليا"])
def test_msa_prepositions_and_nisba_adverbs_are_not_clitics(word: str) -> None:
    assert "clitic_li" not in rule_names(word)


@pytest.mark.parametrize("word", ["يليه", "أهاليهم", "مواليه", "يمليها"])
def test_msa_stems_in_ya_with_a_pronoun_count_little_as_clitics(word: str) -> None:
    # يلي + ه "follows it", أهالي + هم "their families": MSA spelled like a -li clitic.
    assert "clitic_li" in rule_names(word)
    assert word_weight(arabic_key(word)) < 1.0


@pytest.mark.parametrize("word", ["ليه", "ليها", "صيفطليك", "عطاتليا"])
def test_standalone_and_unlisted_clitic_forms_keep_their_full_weight(word: str) -> None:
    assert word_weight(arabic_key(word)) == 1.5


@pytest.mark.parametrize("word", ["ديالكوم", "عندهوم", "خاصكوم"])
def test_pronoun_endings_written_with_waw(word: str) -> None:
    assert "pronoun_kom_hom" in rule_names(word)


def test_mafhum_is_msa_not_a_pronoun_ending() -> None:
    assert "pronoun_kom_hom" not in rule_names("مفهوم")


@pytest.mark.parametrize(("word", "rule"), [("فالبنكة", "fused_fal"), ("دالمغرب", "fused_dal")])
def test_fused_preposition_and_article(word: str, rule: str) -> None:
    assert rule in rule_names(word)


@pytest.mark.parametrize(
    ("word", "rule"), [("گال", "letter_gaf"), ("ڭاع", "letter_gaf"), ("ڤيرمون", "letter_veh")]
)
def test_moroccan_letters(word: str, rule: str) -> None:
    assert rule in rule_names(word)


def test_plain_msa_words_match_no_rule() -> None:
    for word in ["لم", "يصل", "المبلغ", "الذي", "أرسلته", "إلى", "والدتي"]:
        assert word_weight(arabic_key(word)) == 0.0, word


@pytest.mark.parametrize(
    "word", ["المبلغ", "بطاقتي", "بالبطاقة", "والمغرب", "يستطيعون", "مشكلتي", "للحساب"]
)
def test_msa_dictionary_knows_msa_words_with_their_clitics(word: str) -> None:
    assert msa_dictionary.knows(arabic_key(word))


@pytest.mark.parametrize("word", ["كنعرف", "ماكنعرفش", "ديال", "علاش", "كيفاش", "مزيان", "نشوفو"])
def test_msa_dictionary_does_not_know_darija_forms(word: str) -> None:
    assert not msa_dictionary.knows(arabic_key(word))
