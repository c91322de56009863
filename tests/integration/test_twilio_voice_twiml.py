"""The IVR as the caller hears it: TwiML from the running app, parsed and read verb by verb."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from channels.twilio.texts import ivr_table
from config.settings import Settings
from tests.peers.twilio import (
    PUBLIC_BASE,
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    with (
        MediaServer() as media,
        running_gateway(twilio_settings(settings, twilio_api_base_url=media.base_url)) as running,
    ):
        yield running


def verbs(
    hooks: TwilioWebhooks, path: str, params: dict[str, str], query: str = ""
) -> list[ET.Element]:
    response = hooks.post(path, params, query=query)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    return list(root)


def test_incoming_call_gets_consent_in_french_and_arabic_then_the_language_menu(
    hooks: TwilioWebhooks,
) -> None:
    table = ivr_table()
    say_fr, say_ar, gather, redirect = verbs(hooks, "/twilio/voice", call_params(sid("CA")))

    assert (say_fr.tag, say_fr.get("language")) == ("Say", "fr-FR")
    assert "enregistr" in (say_fr.text or "")
    assert (say_ar.tag, say_ar.get("language")) == ("Say", "arb")
    assert "للتسجيل" in (say_ar.text or "")
    assert gather.tag == "Gather"
    assert gather.get("numDigits") == "1"
    assert gather.get("input") == "dtmf"
    assert gather.get("action") == f"{PUBLIC_BASE}/twilio/voice/language?attempt=1"
    options = [(say.get("language"), say.text) for say in gather]
    assert len(options) == len(table.menu)
    assert ("es-ES", "Para español, pulse 6.") in options
    assert (redirect.tag, redirect.text) == (
        "Redirect",
        f"{PUBLIC_BASE}/twilio/voice/menu?attempt=2",
    )


@pytest.mark.parametrize(
    ("digit", "language", "transcribed"),
    [("1", "fr-FR", False), ("3", "arb", False), ("5", "en-US", True), ("6", "es-ES", False)],
)
def test_chosen_language_speaks_the_recording_prompt_and_records(
    hooks: TwilioWebhooks, digit: str, language: str, transcribed: bool
) -> None:
    call_sid = sid("CA")
    hooks.post("/twilio/voice", call_params(call_sid))

    prompt, record, nothing_heard, hangup = verbs(
        hooks, "/twilio/voice/language", call_params(call_sid, Digits=digit), query="attempt=1"
    )

    assert (prompt.tag, prompt.get("language")) == ("Say", language)
    assert record.tag == "Record"
    assert record.get("action") == f"{PUBLIC_BASE}/twilio/voice/recorded"
    assert record.get("recordingStatusCallback") == f"{PUBLIC_BASE}/twilio/voice/recording-status"
    assert record.get("finishOnKey") == "#"
    assert record.get("playBeep") == "true"
    # Twilio's transcription only understands English.
    assert (record.get("transcribe") == "true") is transcribed
    if transcribed:
        assert record.get("transcribeCallback") == f"{PUBLIC_BASE}/twilio/voice/transcription"
    assert (nothing_heard.tag, nothing_heard.get("language")) == ("Say", language)
    assert hangup.tag == "Hangup"


def test_tamazight_is_read_by_the_french_voice(hooks: TwilioWebhooks) -> None:
    call_sid = sid("CA")

    prompt, *_rest = verbs(
        hooks, "/twilio/voice/language", call_params(call_sid, Digits="4"), query="attempt=1"
    )

    assert prompt.get("voice") == "Polly.Lea"
    assert prompt.text == ivr_table().texts("zgh").record_prompt


def test_key_not_on_the_menu_sends_the_caller_back_to_the_menu(hooks: TwilioWebhooks) -> None:
    (redirect,) = verbs(
        hooks, "/twilio/voice/language", call_params(sid("CA"), Digits="9"), query="attempt=1"
    )

    assert (redirect.tag, redirect.text) == (
        "Redirect",
        f"{PUBLIC_BASE}/twilio/voice/menu?attempt=2",
    )


def test_menu_again_says_it_was_not_understood_and_asks_again(hooks: TwilioWebhooks) -> None:
    say_fr, say_ar, gather, redirect = verbs(
        hooks, "/twilio/voice/menu", call_params(sid("CA")), query="attempt=2"
    )

    assert say_fr.text == ivr_table().texts("fr").invalid_choice
    assert say_ar.text == ivr_table().texts("ar").invalid_choice
    assert gather.get("action") == f"{PUBLIC_BASE}/twilio/voice/language?attempt=2"
    assert redirect.text == f"{PUBLIC_BASE}/twilio/voice/menu?attempt=3"


def test_after_the_last_attempt_the_call_goes_on_in_the_default_language(
    hooks: TwilioWebhooks,
) -> None:
    prompt, record, *_rest = verbs(
        hooks, "/twilio/voice/menu", call_params(sid("CA")), query="attempt=3"
    )

    assert prompt.get("language") == "fr-FR"
    assert record.tag == "Record"


def test_end_of_recording_reads_the_reference_character_by_character_twice(
    hooks: TwilioWebhooks, gateway: RunningGateway
) -> None:
    call_sid, recording_sid = sid("CA"), sid("RE")
    hooks.post("/twilio/voice", call_params(call_sid))
    hooks.post("/twilio/voice/language", call_params(call_sid, Digits="3"), query="attempt=1")

    intro, spelled, repeat, spelled_again, goodbye, hangup = verbs(
        hooks,
        "/twilio/voice/recorded",
        call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url(
                gateway.services.settings.twilio_api_base_url, recording_sid
            ),
            RecordingDuration="12",
            Digits="#",
        ),
    )

    reference = gateway.services.store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert reference is not None
    characters = reference.reference.replace("-", "")
    for say in (intro, spelled, repeat, spelled_again, goodbye):
        assert (say.tag, say.get("language"), say.get("voice")) == ("Say", "arb", "Polly.Zeina")
    for say in (spelled, spelled_again):
        (prosody,) = list(say)
        assert prosody.tag == "prosody"
        assert prosody.get("rate") == "slow"
        spoken = [item.text for item in prosody if item.tag == "say-as"]
        assert "".join(spoken) == characters
        assert all(
            item.get("interpret-as") == "characters" for item in prosody if item.tag == "say-as"
        )
        assert sum(1 for item in prosody if item.tag == "break") > len(characters)
    assert intro.text == ivr_table().texts("ar").reference_intro
    assert hangup.tag == "Hangup"
