"""Recorded prompts: played with <Play> when Cash Plus has recorded them, the voice otherwise."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels.twilio import audio
from channels.twilio.texts import ivr_table
from config.settings import Settings
from tests.peers.twilio import (
    PUBLIC_BASE,
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    running_gateway,
    sid,
    twilio_settings,
)

MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A prompts folder with two recordings: French record_prompt, Darija menu_option."""
    for tag, name in (("fr", "record_prompt"), ("ary", "menu_option")):
        (tmp_path / tag).mkdir(exist_ok=True)
        (tmp_path / tag / f"{name}.mp3").write_bytes(MP3)
    monkeypatch.setattr(audio, "PROMPT_DIR", tmp_path)
    return tmp_path


@pytest.fixture
def gateway(settings: Settings, recorded: Path) -> Iterator[RunningGateway]:
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
    return list(ET.fromstring(response.content))


def test_a_recorded_sentence_is_played_and_the_others_spoken(hooks: TwilioWebhooks) -> None:
    play, record, nothing_heard, _hangup = verbs(
        hooks, "/twilio/voice/language", call_params(sid("CA"), Digits="1"), "attempt=1"
    )

    assert (play.tag, play.text) == ("Play", f"{PUBLIC_BASE}/twilio/prompts/fr/record_prompt.mp3")
    assert record.tag == "Record"
    assert (nothing_heard.tag, nothing_heard.text) == (
        "Say",
        ivr_table().texts("fr").nothing_heard,
    )


def test_the_menu_plays_the_darija_option_inside_the_gather(hooks: TwilioWebhooks) -> None:
    _fr, _ar, gather, _redirect = verbs(hooks, "/twilio/voice", call_params(sid("CA")))

    options = [(child.tag, child.text) for child in gather]
    assert options[1] == ("Play", f"{PUBLIC_BASE}/twilio/prompts/ary/menu_option.mp3")
    assert options[0] == ("Say", ivr_table().texts("fr").menu_option)


def test_the_app_serves_a_recorded_prompt(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.base_url}/twilio/prompts/fr/record_prompt.mp3")

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.content == MP3


@pytest.mark.parametrize(
    "path",
    [
        "/twilio/prompts/fr/goodbye.mp3",  # a sentence not recorded
        "/twilio/prompts/xx/record_prompt.mp3",  # not a language of the line
        "/twilio/prompts/fr/..%2F..%2Fivr.mp3",  # not a sentence name
    ],
)
def test_anything_else_under_prompts_is_not_found(gateway: RunningGateway, path: str) -> None:
    assert httpx.get(f"{gateway.base_url}{path}").status_code == 404
