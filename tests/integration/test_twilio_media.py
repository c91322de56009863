"""Recordings and photos: downloaded behind basic auth, retried, kept with their sha256.

The media server stands in for Twilio's API (basic auth with the account SID
and auth token); the WAV is real speech made by espeak-ng.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from channels.twilio.worker import allowed
from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import MediaRow, OutboxRow
from normalizer.contract import ComplaintEvent, ComplaintMessage
from tests.peers.processes import wait_until
from tests.peers.twilio import (
    ACCOUNT_SID,
    CALLER,
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


@dataclass
class Rig:
    gateway: RunningGateway
    hooks: TwilioWebhooks
    media: MediaServer


@pytest.fixture(scope="module")
def wav() -> bytes:
    return espeak_wav("Salam, bghit nchki 3la wahd l'opération.", "ar")


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    with MediaServer() as media:
        configured = twilio_settings(
            settings, twilio_api_base_url=media.base_url, recording_fetch_attempts=3
        )
        with running_gateway(configured) as gateway:
            hooks = TwilioWebhooks(target=gateway.base_url)
            yield Rig(gateway, hooks, media)
            hooks.close()


def record_call(rig: Rig, wav: bytes | None, fail_first: int = 0) -> tuple[str, str]:
    """A call that left a recording; ``wav`` None: the file never becomes available."""
    call_sid, recording_sid = sid("CA"), sid("RE")
    url = recording_url(rig.media.base_url, recording_sid)
    path = url.removeprefix(rig.media.base_url) + ".wav"
    if wav is not None:
        rig.media.add(path, wav, "audio/x-wav")
    rig.media.fail(path, fail_first)
    rig.hooks.post("/twilio/voice/language", call_params(call_sid, Digits="2"), query="attempt=1")
    response = rig.hooks.post(
        "/twilio/voice/recorded",
        call_params(call_sid, RecordingSid=recording_sid, RecordingUrl=url),
    )
    assert response.status_code == 200
    return call_sid, path


def media_state(rig: Rig, path: str) -> str | None:
    with reading(rig.gateway.services.store.engine) as session:
        return session.scalar(select(MediaRow.state).where(MediaRow.url.endswith(path)))


def queued_message(rig: Rig, call_sid: str) -> ComplaintMessage:
    """The complaint as its outbox row would publish it now."""
    store = rig.gateway.services.store
    found = store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert found is not None
    with reading(store.engine) as session:
        payload = session.scalar(select(OutboxRow.payload).where(OutboxRow.event_id == found.id))
    assert payload is not None
    return ComplaintEvent.model_validate_json(payload).data


def test_recording_behind_basic_auth_lands_in_the_blob_store_with_its_sha256(
    rig: Rig, wav: bytes
) -> None:
    call_sid, path = record_call(rig, wav)

    wait_until(lambda: media_state(rig, path) == "stored", "the recording to be stored")

    (attachment,) = queued_message(rig, call_sid).attachments
    digest = hashlib.sha256(wav).hexdigest()
    assert attachment.sha256 == digest
    assert attachment.content_type == "audio/x-wav"
    assert attachment.size == len(wav)
    stored = rig.gateway.services.store.blobs.path_for(digest)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    assert rig.media.unauthorized[path] == 0


def test_recording_not_yet_available_is_fetched_again_until_it_is(rig: Rig, wav: bytes) -> None:
    call_sid, path = record_call(rig, wav, fail_first=2)

    wait_until(lambda: media_state(rig, path) == "stored", "the recording to be stored")

    assert rig.media.hits[path] == 3
    assert len(queued_message(rig, call_sid).attachments) == 1


def test_recording_that_never_downloads_leaves_its_url_and_says_the_audio_is_missing(
    rig: Rig,
) -> None:
    call_sid, path = record_call(rig, None)

    wait_until(lambda: media_state(rig, path) == "failed", "the download to be given up")

    message = queued_message(rig, call_sid)
    assert message.attachments == []
    assert message.evidence.missing_media == [rig.media.base_url + path]
    assert message.evidence.recording_url == (rig.media.base_url + path).removesuffix(".wav")
    assert rig.media.hits[path] == 3


def send_photo(rig: Rig, url: str) -> str:
    """An MMS whose one photo is at ``url``; its MessageSid."""
    message_sid = sid("MM")
    rig.hooks.post(
        "/twilio/messaging",
        {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": message_sid,
            "From": CALLER,
            "Body": "voici la photo",
            "NumMedia": "1",
            "MediaUrl0": url,
        },
    )
    return message_sid


def media_reason(rig: Rig, path: str) -> str | None:
    with reading(rig.gateway.services.store.engine) as session:
        return session.scalar(select(MediaRow.last_error).where(MediaRow.url.endswith(path)))


def message_complaint(rig: Rig, message_sid: str) -> ComplaintMessage:
    store = rig.gateway.services.store
    found = store.complaints.find_by_dedup_key(f"twilio:message:{message_sid}")
    assert found is not None
    with reading(store.engine) as session:
        payload = session.scalar(select(OutboxRow.payload).where(OutboxRow.event_id == found.id))
    assert payload is not None
    return ComplaintEvent.model_validate_json(payload).data


def test_media_outside_twilios_hosts_is_never_requested_and_the_message_goes_without_it(
    rig: Rig,
) -> None:
    with MediaServer() as elsewhere:
        url = elsewhere.add("/photo.png", image_bytes("PNG"), "image/png")
        message_sid = send_photo(rig, url)
        wait_until(lambda: media_state(rig, "/photo.png") == "failed", "the download refused")

    assert elsewhere.authorizations == []  # not one request, with or without credentials
    reason = media_reason(rig, "/photo.png")
    assert reason is not None and "not a Twilio media host" in reason
    message = message_complaint(rig, message_sid)
    assert message.attachments == []
    assert message.evidence.missing_media == [url]


def test_a_redirect_from_twilio_to_an_internal_address_is_not_followed(rig: Rig) -> None:
    secret = b"intake_complaints_total 42\n"
    with MediaServer() as internal:
        target = internal.add("/metrics", secret, "text/plain")
        url = rig.media.redirect("/2010-04-01/Media/ME1.png", target)
        message_sid = send_photo(rig, url)
        wait_until(lambda: media_state(rig, "/ME1.png") == "failed", "the redirect refused")

    assert rig.media.hits["/2010-04-01/Media/ME1.png"] == 1  # the allowed hop, once
    assert internal.hits == {}  # the internal address never saw a request
    reason = media_reason(rig, "/ME1.png")
    assert reason is not None and "not a Twilio media host" in reason
    message = message_complaint(rig, message_sid)
    assert message.attachments == []
    blobs = rig.gateway.services.store.blobs
    assert not blobs.path_for(hashlib.sha256(secret).hexdigest()).exists()


def test_only_twilios_hosts_over_https_and_the_configured_api_origin_are_allowed(
    settings: Settings,
) -> None:
    configured = settings.model_copy(
        update={
            "twilio_api_base_url": "http://127.0.0.1:8999",
            "twilio_media_hosts": "media.example.ma",
        }
    )
    assert allowed("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", configured)
    assert allowed("https://media.twiliocdn.com/AC1/abc", configured)
    assert allowed("https://media.example.ma/x.png", configured)
    assert allowed("http://127.0.0.1:8999/2010-04-01/x.wav", configured)
    for refused in (
        "http://api.twilio.com/x",  # not https
        "https://api.twilio.com:8443/x",
        "https://api.twilio.com.evil.example/x",
        "https://user:pw@api.twilio.com/x",
        "http://127.0.0.1:9000/metrics",  # the API's host, another port
        "https://127.0.0.1:8999/x",  # the API's host and port, another scheme
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "https://[::1/x",
    ):
        assert not allowed(refused, configured), refused


def test_a_photo_downloaded_before_the_runner_made_the_complaint_is_in_it(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    captures = rig.gateway.services.store.captures
    monkeypatch.setattr(captures, "claim", lambda *_args, **_kwargs: [])  # the runner is late
    url = rig.media.add("/2010-04-01/Media/ME7.png", image_bytes("PNG"), "image/png")
    message_sid = send_photo(rig, url)
    wait_until(lambda: media_state(rig, "/ME7.png") == "stored", "the photo downloaded first")
    assert captures.backlog() != []  # no complaint yet: only the capture
    monkeypatch.undo()
    captures.arrived.set()
    rig.gateway.settle()
    message = message_complaint(rig, message_sid)
    assert [item.content_type for item in message.attachments] == ["image/png"]
    assert message.evidence.missing_media == []
