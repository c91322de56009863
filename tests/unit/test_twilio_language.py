"""Language of a phone complaint: the caller's menu choice, checked against the transcript."""

from __future__ import annotations

from gateway.store.revisions import IVR_DEFAULT_METHOD, call_language


def test_menu_choice_alone_is_the_language_with_full_confidence() -> None:
    language = call_language("fr", "ivr", None, None)

    assert (language.tag, language.method, language.confidence) == ("fr", "ivr", 1.0)
    assert language.secondary == []


def test_transcript_in_the_chosen_language_adds_nothing() -> None:
    assert call_language("en", "ivr", "en", 0.93).secondary == []


def test_transcript_in_another_language_is_a_secondary_language() -> None:
    language = call_language("fr", "ivr", "ary-Arab", 0.81234)

    assert language.tag == "fr"
    assert [(item.tag, item.confidence) for item in language.secondary] == [("ary-Arab", 0.8123)]


def test_undetermined_transcript_adds_nothing() -> None:
    assert call_language("ar", "ivr", "und", 0.0).secondary == []


def test_when_the_caller_chose_nothing_the_transcript_decides() -> None:
    guessed = call_language("fr", IVR_DEFAULT_METHOD, None, None)
    decided = call_language("fr", IVR_DEFAULT_METHOD, "es", 0.9)

    assert guessed.confidence < 1
    assert (decided.tag, decided.method, decided.confidence) == ("es", "transcript", 0.9)


def test_the_darija_menu_choice_is_tagged_as_the_contract_tags_darija() -> None:
    language = call_language("ary", "ivr", None, None)

    assert (language.tag, language.method, language.confidence) == ("ary-Arab", "ivr", 1.0)


def test_a_darija_transcript_of_a_darija_call_is_no_second_language() -> None:
    assert call_language("ary", "ivr", "ary-Arab", 0.8).secondary == []
