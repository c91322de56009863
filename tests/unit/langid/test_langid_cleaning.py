"""Cleaning keeps language evidence and drops channel noise."""

from __future__ import annotations

from normalizer.langid.cleaning import arabic_key, arabizi_key, clean


def words(text: str) -> list[str]:
    return [token.text for token in clean(text).tokens]


def test_urls_emails_references_phones_and_amounts_are_dropped() -> None:
    text = (
        "voir https://a.ma/x www.b.com ecrire a x.y@cashplus.ma "
        "ref CP-7K4M-9QXT tel 0661-23-45-67 1500dh 20€"
    )
    assert words(text) == ["voir", "ecrire", "a", "ref", "tel"]


def test_addresses_inside_brackets_and_after_punctuation_are_dropped_whole() -> None:
    text = "(x.y@cashplus.ma) merci,contact@cashplus.ma voir:cashplus.ma/aide fin"
    assert words(text) == ["merci", "voir", "fin"]


def test_a_very_long_run_of_letters_is_kept_as_one_word() -> None:
    assert words("a" * 20_000 + " fin") == ["a" * 20_000, "fin"]


def test_arabizi_digits_inside_words_are_kept() -> None:
    assert words("3lach n3ref 7ta 9bel") == ["3lach", "n3ref", "7ta", "9bel"]


def test_tokens_with_identifier_digits_are_dropped() -> None:
    assert words("code A1B4 ok") == ["code", "ok"]


def test_arabic_marks_and_tatweel_are_removed() -> None:
    assert words("أُرِيـــدُ") == ["أريد"]


def test_arabic_indic_digits_become_numbers_and_are_dropped() -> None:
    assert words("اتصل ٠٦٦١٢٣٤٥٦٧") == ["اتصل"]


def test_french_elision_is_split() -> None:
    assert words("l'argent j'ai") == ["l", "argent", "j", "ai"]


def test_scripts_are_tagged() -> None:
    scripts = [token.script for token in clean("salam سلام ⴰⵣⵓⵍ привет").tokens]
    assert scripts == ["latin", "arabic", "tifinagh", "other"]


def test_arabizi_key_merges_spelling_variants() -> None:
    assert arabizi_key("dyal") == arabizi_key("dial")
    assert arabizi_key("bzzaf") == arabizi_key("bzaf")
    assert arabizi_key("3endi") == arabizi_key("3ndi")


def test_arabic_key_unifies_alef_and_taa_marbuta() -> None:
    assert arabic_key("إلى") == arabic_key("الي")
    assert arabic_key("زوينة") == arabic_key("زوينه")
