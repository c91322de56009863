"""The phone line's texts table: complete for every language it speaks or writes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from channels.twilio.texts import SPOKEN, TABLE, IvrTable, ivr_table, reference_groups


def table_with(change: dict[str, object]) -> IvrTable:
    data = json.loads(TABLE.read_text(encoding="utf-8"))
    for path, value in change.items():
        *parents, last = path.split(".")
        target = data
        for key in parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return IvrTable.model_validate(data)


def test_every_menu_language_has_a_voice_and_every_spoken_text() -> None:
    table = ivr_table()
    for entry in table.menu:
        texts = table.texts(entry.language)
        assert table.voice_for(entry.language).language
        assert all(getattr(texts, key) for key in SPOKEN), entry.language


def test_menu_offers_darija_and_arabic_as_separate_choices_on_distinct_keys() -> None:
    menu = ivr_table().menu
    assert [entry.language for entry in menu] == ["fr", "ary", "ar", "zgh", "en", "es"]
    assert len({entry.digit for entry in menu}) == len(menu)


def test_each_menu_option_names_its_own_key() -> None:
    table = ivr_table()
    for entry in table.menu:
        assert entry.digit in table.texts(entry.language).spoken("menu_option")


def test_only_english_asks_for_twilio_transcription() -> None:
    table = ivr_table()
    transcribed = [tag for tag, texts in table.languages.items() if texts.twilio_transcription]
    assert transcribed == ["en"]


def test_a_menu_language_without_a_spoken_text_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="es: missing spoken texts"):
        table_with({"languages.es.goodbye": None})


def test_a_reply_without_its_reference_placeholder_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="sms_reply must contain"):
        table_with({"languages.fr.sms_reply": "Merci."})


def test_two_options_on_the_same_key_are_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="digit is used twice"):
        table_with({"menu": [{"digit": "1", "language": "fr"}, {"digit": "1", "language": "ar"}]})


@pytest.mark.parametrize(
    ("detected", "replied"),
    [
        ("ary-Arab", "ar"),
        ("ary-Latn", "ary-Latn"),
        ("ber-Latn", "zgh"),
        ("fr-MA", "fr"),
        ("de", "fr"),
    ],
)
def test_written_reply_language_follows_the_message(detected: str, replied: str) -> None:
    table = ivr_table()
    assert table.reply_texts(detected) == table.texts(replied)


def test_reference_is_read_in_its_three_groups() -> None:
    assert reference_groups("CP-7K4M-9QXT") == ["CP", "7K4M", "9QXT"]
