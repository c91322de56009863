"""``POST /v1/calls/{CallSid}/transcript``: any speech-to-text engine attaches a transcript."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import QuarantineRow
from normalizer.contract import ComplaintMessage
from tests.peers.twilio import (
    RunningGateway,
    TwilioWebhooks,
    call_params,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)


@dataclass
class Api:
    gateway: RunningGateway
    hooks: TwilioWebhooks
    key: str

    def post(self, call_sid: str, body: object, key: str | None = None) -> httpx.Response:
        return self.hooks.client.post(
            f"{self.gateway.base_url}/v1/calls/{call_sid}/transcript",
            json=body,
            headers={"Authorization": f"Bearer {key or self.key}"},
        )


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    # Media on a closed port: recordings stay pending, the complaint keeps waiting.
    with running_gateway(
        twilio_settings(settings, twilio_api_base_url="http://127.0.0.1:9")
    ) as gateway:
        hooks = TwilioWebhooks(target=gateway.base_url)
        keys = gateway.services.store.api_keys
        yield Api(gateway, hooks, keys.create("stt", {"transcripts:write"}))
        hooks.close()


def key_with(api: Api, *scopes: str) -> str:
    return api.gateway.services.store.api_keys.create(f"partner-{sid('K')}", scopes)


def call_complaint(api: Api, call_sid: str) -> ComplaintMessage:
    found = api.gateway.services.store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert found is not None
    return found


def recorded_call(api: Api) -> str:
    call_sid, recording_sid = sid("CA"), sid("RE")
    api.hooks.post("/twilio/voice/language", call_params(call_sid, Digits="1"), query="attempt=1")
    api.hooks.post(
        "/twilio/voice/recorded",
        call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url("http://127.0.0.1:9", recording_sid),
        ),
    )
    return call_sid


def test_transcript_without_an_api_key_is_refused(api: Api) -> None:
    response = api.post(recorded_call(api), {"text": "bonjour"}, key="not-a-key")

    assert response.status_code == 401


def test_transcript_for_an_unknown_call_is_not_found(api: Api) -> None:
    response = api.post(sid("CA"), {"text": "bonjour"})

    assert response.status_code == 404


def test_transcript_for_a_missed_call_is_a_conflict(api: Api) -> None:
    call_sid = sid("CA")
    api.hooks.post("/twilio/voice", call_params(call_sid))
    api.hooks.post("/twilio/voice/status", call_params(call_sid, CallStatus="no-answer"))

    response = api.post(call_sid, {"text": "bonjour"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "call_without_recording"


def test_invalid_transcript_is_refused_naming_the_field_and_quarantined(api: Api) -> None:
    call_sid = recorded_call(api)

    response = api.post(call_sid, {"text": "", "language": "French"})

    assert response.status_code == 422
    assert response.json()["error"]["field"] in ("text", "language")
    with reading(api.gateway.services.store.engine) as session:
        (row,) = session.scalars(select(QuarantineRow)).all()
    assert row.channel == "phone"
    assert row.source_ids["call_sid"] == call_sid


def test_transcript_before_the_recording_waits_for_the_complaint(api: Api) -> None:
    call_sid = sid("CA")
    api.hooks.post("/twilio/voice/language", call_params(call_sid, Digits="1"), query="attempt=1")

    waiting = api.post(call_sid, {"text": "Ma carte est bloquée depuis lundi."})
    recording_sid = sid("RE")
    api.hooks.post(
        "/twilio/voice/recorded",
        call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url("http://127.0.0.1:9", recording_sid),
        ),
    )

    assert waiting.json()["outcome"] == "waiting"
    complaint = api.gateway.services.store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert complaint is not None
    assert complaint.body == "Ma carte est bloquée depuis lundi."


def test_same_transcript_twice_changes_nothing_the_second_time(api: Api) -> None:
    call_sid = recorded_call(api)
    reader = key_with(api, "transcripts:write", "complaints:read-all")

    first = api.post(call_sid, {"text": "Ma carte est bloquée.", "engine": "whisper"}, reader)
    second = api.post(call_sid, {"text": "Ma carte est bloquée.", "engine": "whisper"}, reader)

    assert first.json()["outcome"] == "rewritten"
    assert second.json()["outcome"] == "unchanged"
    assert first.json()["reference"] == second.json()["reference"]


# -- who may attach a transcript, and what it learns (review S7) -----------------------
def test_a_partner_key_without_the_transcripts_scope_cannot_rewrite_a_call(api: Api) -> None:
    call_sid = recorded_call(api)
    before = call_complaint(api, call_sid).body
    crm = key_with(api, "complaints:write", "complaints:status", "letters:write")

    refused = api.post(call_sid, {"text": "Texte inventé par un autre partenaire."}, crm)

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["code"], error["scope"]) == ("missing_scope", "transcripts:write")
    assert "reference" not in refused.text and "complaint_id" not in refused.text
    assert call_complaint(api, call_sid).body == before


def test_the_transcript_engine_is_not_told_which_complaint_the_call_is(api: Api) -> None:
    call_sid = recorded_call(api)

    answer = api.post(call_sid, {"text": "Ma carte est bloquée depuis lundi."})

    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "rewritten"
    assert (answer.json()["complaint_id"], answer.json()["reference"]) == (None, None)
    assert call_complaint(api, call_sid).body == "Ma carte est bloquée depuis lundi."


def test_a_key_that_reads_every_complaint_is_told_the_reference(api: Api) -> None:
    call_sid = recorded_call(api)
    reader = key_with(api, "transcripts:write", "complaints:read-all")

    answer = api.post(call_sid, {"text": "Ma carte est bloquée depuis lundi."}, reader)

    assert answer.json()["reference"] == call_complaint(api, call_sid).reference
