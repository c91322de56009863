"""Whole phone-line flows, from signed webhooks to the machine's RabbitMQ.

Each test runs the real app on a socket, the phone worker and the relay in
threads, a local media server standing in for Twilio's recording and photo
URLs, and reads what reached its own namespace of queues.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow
from tests.peers.processes import wait_until
from tests.peers.queues import drain
from tests.peers.twilio import (
    ACCOUNT_SID,
    CALLER,
    LINE_NUMBER,
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    espeak_wav,
    image_bytes,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)

TRANSCRIPT = (
    "Hello, I sent two thousand dirhams to my brother on Monday and he never received them."
)


@dataclass
class Line:
    gateway: RunningGateway
    hooks: TwilioWebhooks
    media: MediaServer
    settings: Settings
    wav: bytes


@pytest.fixture(scope="module")
def wav() -> bytes:
    return espeak_wav("Bonjour, mon transfert n'est jamais arrivé.", "fr")


@pytest.fixture
def line(amqp_settings: Settings, wav: bytes) -> Iterator[Line]:
    with MediaServer() as media:
        settings = twilio_settings(
            amqp_settings, twilio_api_base_url=media.base_url, call_transcript_wait=120.0
        )
        with running_gateway(settings, relay=True) as gateway:
            hooks = TwilioWebhooks(target=gateway.base_url)
            yield Line(gateway, hooks, media, settings, wav)
            hooks.close()


def wait_for_outbox_empty(line: Line, at_least: int = 1) -> None:
    outbox = line.gateway.services.store.outbox

    def all_confirmed() -> bool:
        stats = outbox.stats()
        return stats.published >= at_least and stats.pending == 0 and stats.waiting == 0

    wait_until(all_confirmed, "the relay to publish everything", timeout=60)


def complaints(line: Line) -> int:
    with reading(line.gateway.services.store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(ComplaintRow)) or 0)


def make_call(line: Line, *, digit: str, repeat: int = 1, transcript: str | None = None) -> str:
    """A whole English/French call, each webhook delivered ``repeat`` times."""
    call_sid, recording_sid = sid("CA"), sid("RE")
    url = recording_url(line.media.base_url, recording_sid)
    line.media.add(url.removeprefix(line.media.base_url) + ".wav", line.wav, "audio/x-wav")
    recording = call_params(
        call_sid, RecordingSid=recording_sid, RecordingUrl=url, RecordingDuration="4"
    )
    steps: list[tuple[str, dict[str, str], str]] = [
        ("/twilio/voice", call_params(call_sid, CallStatus="ringing"), ""),
        ("/twilio/voice/language", call_params(call_sid, Digits=digit), "attempt=1"),
        ("/twilio/voice/recorded", {**recording, "Digits": "#"}, ""),
        ("/twilio/voice/recording-status", {**recording, "RecordingStatus": "completed"}, ""),
    ]
    if transcript is not None:
        steps.append(
            (
                "/twilio/voice/transcription",
                {
                    **recording,
                    "TranscriptionSid": sid("TR"),
                    "TranscriptionStatus": "completed",
                    "TranscriptionText": transcript,
                },
                "",
            )
        )
    steps.append(
        (
            "/twilio/voice/status",
            call_params(call_sid, CallStatus="completed", CallDuration="40"),
            "",
        )
    )
    for path, params, query in steps:
        for _ in range(repeat):
            response = line.hooks.post(path, params, query=query)
            assert response.status_code == 200, (path, response.text)
    return call_sid


def test_call_with_choice_recording_and_transcript_makes_one_complaint_on_the_queue(
    line: Line,
) -> None:
    call_sid = make_call(line, digit="5", transcript=TRANSCRIPT)

    wait_for_outbox_empty(line)

    (event,) = drain(line.settings, "inbound")
    complaint = event["data"]
    assert isinstance(complaint, dict)
    assert event["type"] == "ma.cashplus.complaint.received.v1"
    assert complaint["channel"] == "phone"
    assert complaint["body"] == TRANSCRIPT
    assert complaint["language"]["tag"] == "en"
    assert complaint["language"]["method"] == "ivr"
    assert complaint["customer"]["phone"] == CALLER
    assert complaint["evidence"]["call_sid"] == call_sid
    assert complaint["evidence"]["missing_media"] == []
    (audio,) = complaint["attachments"]
    assert audio["content_type"] == "audio/x-wav"
    assert audio["sha256"] == hashlib.sha256(line.wav).hexdigest()
    assert line.gateway.services.store.blobs.get(audio["stored_at"]) == line.wav
    assert drain(line.settings, "events") == []


def test_five_deliveries_of_every_callback_still_make_one_complaint_one_attachment_one_event(
    line: Line,
) -> None:
    make_call(line, digit="5", repeat=5, transcript=TRANSCRIPT)

    wait_for_outbox_empty(line)

    received = drain(line.settings, "inbound")
    assert len(received) == 1
    data = received[0]["data"]
    assert isinstance(data, dict)
    assert len(data["attachments"]) == 1
    assert complaints(line) == 1
    assert drain(line.settings, "events") == []


def test_call_abandoned_at_the_menu_is_one_missed_call_event_and_no_complaint(
    line: Line,
) -> None:
    call_sid = sid("CA")
    for _ in range(3):
        line.hooks.post("/twilio/voice", call_params(call_sid, CallStatus="ringing"))
    for _ in range(3):
        response = line.hooks.post(
            "/twilio/voice/status", call_params(call_sid, CallStatus="completed", CallDuration="7")
        )
        assert response.status_code == 200

    wait_for_outbox_empty(line)

    (event,) = drain(line.settings, "events")
    assert event["type"] == "ma.cashplus.intake.call.missed.v1"
    details = event["data"]["details"]  # type: ignore[index]
    assert details["call_sid"] == call_sid
    assert details["caller"] == CALLER
    assert details["stage"] == "menu"
    assert drain(line.settings, "inbound") == []
    assert complaints(line) == 0


def test_sms_with_two_images_is_one_complaint_with_two_typed_attachments(line: Line) -> None:
    message_sid = sid("MM")
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message_sid}/Media"
    png, jpeg = image_bytes("PNG"), image_bytes("JPEG", (20, 90, 200))
    # Declared types are what the sender's phone claimed; the bytes decide.
    first = line.media.add(f"{base}/{sid('ME')}", png, "image/png")
    second = line.media.add(f"{base}/{sid('ME')}", jpeg, "image/jpeg")
    params = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "From": CALLER,
        "To": LINE_NUMBER,
        "Body": "Bonjour, le guichet a gardé ma carte, voici le reçu et l'écran.",
        "NumMedia": "2",
        "MediaUrl0": first,
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": second,
        "MediaContentType1": "image/jpeg",
        "NumSegments": "1",
    }

    replies = [line.hooks.post("/twilio/messaging", params) for _ in range(2)]

    wait_for_outbox_empty(line)
    (event,) = drain(line.settings, "inbound")
    complaint = event["data"]
    assert isinstance(complaint, dict)
    assert complaint["channel"] == "sms"
    assert complaint["language"]["tag"] == "fr"
    assert [item["content_type"] for item in complaint["attachments"]] == [
        "image/png",
        "image/jpeg",
    ]
    assert [item["sha256"] for item in complaint["attachments"]] == [
        hashlib.sha256(png).hexdigest(),
        hashlib.sha256(jpeg).hexdigest(),
    ]
    assert complaint["attachments"][0]["declared_type"] == "image/png"
    for reply in replies:
        (message,) = ET.fromstring(reply.content)
        assert message.tag == "Message"
        assert complaint["reference"] in (message.text or "")
        assert "réclamation" in (message.text or "")


def test_transcript_after_publication_is_published_as_an_amendment_of_the_same_complaint(
    amqp_settings: Settings, wav: bytes
) -> None:
    with MediaServer() as media:
        settings = twilio_settings(
            amqp_settings, twilio_api_base_url=media.base_url, call_transcript_wait=0.0
        )
        with running_gateway(settings, relay=True) as gateway:
            hooks = TwilioWebhooks(target=gateway.base_url)
            line = Line(gateway, hooks, media, settings, wav)
            call_sid = make_call(line, digit="1")
            # Published at once (no wait), then amended when the recording is stored.
            wait_for_outbox_empty(line, at_least=2)
            key = gateway.services.store.api_keys.create("speech-engine", {"transcripts:write"})
            response = hooks.client.post(
                f"{gateway.base_url}/v1/calls/{call_sid}/transcript",
                json={"text": "Bonjour, mon transfert n'est jamais arrivé.", "engine": "whisper"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.json()["outcome"] == "amended"
            wait_for_outbox_empty(line, at_least=3)
            hooks.close()
            received, recorded, transcribed = drain(settings, "inbound")

    assert received["type"] == "ma.cashplus.complaint.received.v1"
    assert {recorded["type"], transcribed["type"]} == {"ma.cashplus.complaint.amended.v1"}
    ids = {event["data"]["id"] for event in (received, recorded, transcribed)}  # type: ignore[index]
    assert len(ids) == 1
    assert len({received["id"], recorded["id"], transcribed["id"]}) == 3
    assert recorded["amendedfields"] == "attachments,evidence"
    assert transcribed["amendedfields"] == "body"
    assert transcribed["data"]["body"] == "Bonjour, mon transfert n'est jamais arrivé."  # type: ignore[index]
