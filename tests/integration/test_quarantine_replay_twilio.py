"""Replaying what the phone line quarantined: through the same handler, never twice.

The gateway runs on a socket with its phone worker, Twilio's webhooks are
signed as Twilio signs them. Items "refused by a check since relaxed" are
the signed request bytes kept as the channel keeps them (path, first
arrival); items refused for good come from real webhooks. A replay goes
through the handler of the webhook's path, minus the signature check done
at the edge; a reason that is not a content refusal (a forged signature)
is never replayed. CallSid and MessageSid keep it to one complaint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from channels.twilio.replay import replay_twilio
from channels.twilio.signature import FORM_TYPE
from config.settings import Settings
from gateway.lib.services import build_services
from gateway.ops.quarantine import replay
from gateway.store.calls import CallStore
from gateway.store.quarantine import Quarantine, QuarantineItem
from gateway.store.tables import ComplaintRow, QuarantineRow
from tests.peers.complaints import count_rows
from tests.peers.processes import IntakeProcesses, env_for
from tests.peers.twilio import (
    ACCOUNT_SID,
    CALLER,
    LINE_NUMBER,
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)

RECORDED = "/twilio/voice/recorded"
MESSAGING = "/twilio/messaging"
TEXT = "Ma carte est restée bloquée dans le guichet hier soir, merci de me rappeler."


@pytest.fixture
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        yield server


@pytest.fixture
def gateway(settings: Settings, media: MediaServer) -> Iterator[RunningGateway]:
    with running_gateway(twilio_settings(settings, twilio_api_base_url=media.base_url)) as running:
        yield running


def kept(
    gateway: RunningGateway,
    channel: str,
    params: dict[str, str],
    *,
    path: str,
    reason: str = "missing_parameter",
    first_posted: datetime | None = None,
) -> QuarantineItem:
    """A signed webhook refused by a check since relaxed, kept as the channel keeps it."""
    ids: dict[str, object] = {"path": path}
    if first_posted is not None:
        ids["received_at"] = first_posted.isoformat()
    engine = gateway.services.store.engine
    item_id = gateway.services.store.complaints.quarantine(
        channel=channel,
        data=urlencode(params).encode(),
        content_type=FORM_TYPE,
        reason_code=reason,
        reason="refused by a check since relaxed",
        source_ids=ids,
    )
    item = Quarantine(engine).get(item_id)
    assert item is not None
    return item


def start_call(hooks: TwilioWebhooks) -> str:
    call_sid = sid("CA")
    hooks.post("/twilio/voice", call_params(call_sid, CallStatus="ringing"))
    hooks.post("/twilio/voice/language", call_params(call_sid, Digits="1"), query="attempt=1")
    return call_sid


def recording(media: MediaServer, call_sid: str) -> dict[str, str]:
    """The ``<Record>`` action's parameters, the recording served by the stand-in API."""
    recording_sid = sid("RE")
    url = recording_url(media.base_url, recording_sid)
    media.add(url.removeprefix(media.base_url) + ".wav", b"RIFF----WAVEfmt ", "audio/x-wav")
    return call_params(call_sid, RecordingSid=recording_sid, RecordingUrl=url)


def text_message(sender: str, message_sid: str, body: str = TEXT) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": message_sid,
        "From": sender,
        "To": LINE_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


def an_hour_ago() -> datetime:
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


# -- calls ------------------------------------------------------------------
def test_replayed_recording_becomes_the_calls_complaint_dated_from_the_call(
    gateway: RunningGateway, hooks: TwilioWebhooks, media: MediaServer
) -> None:
    call_sid = start_call(hooks)
    item = kept(gateway, "phone", recording(media, call_sid), path=RECORDED)

    result = replay(gateway.services, item)

    assert result.ok and result.detail == "complaint recorded", result.detail
    message = gateway.services.store.complaints.get_by_reference(result.reference or "")
    assert message is not None and message.channel.value == "phone"
    call = CallStore(gateway.services.store.engine).get(call_sid)
    assert call is not None and message.received_at == call.started_at
    (resolved,) = Quarantine(gateway.services.store.engine).entries(resolved=True)
    assert resolved.complaint_id == message.id


def test_recording_replayed_twice_and_after_twilios_retry_is_one_complaint(
    gateway: RunningGateway, hooks: TwilioWebhooks, media: MediaServer
) -> None:
    call_sid = start_call(hooks)
    params = recording(media, call_sid)
    item = kept(gateway, "phone", params, path=RECORDED)
    first = replay(gateway.services, item)

    again = replay_twilio(gateway.services, item)
    retried = hooks.post(RECORDED, params)

    assert again.ok and again.detail == "already recorded"
    assert again.complaint_id == first.complaint_id
    assert retried.status_code == 200
    assert count_rows(gateway.services.store, ComplaintRow) == 1


def test_call_the_store_never_saw_starts_when_twilio_first_posted_the_webhook(
    gateway: RunningGateway, media: MediaServer
) -> None:
    first_posted = an_hour_ago()
    item = kept(
        gateway, "phone", recording(media, sid("CA")), path=RECORDED, first_posted=first_posted
    )

    result = replay(gateway.services, item)

    assert result.ok, result.detail
    message = gateway.services.store.complaints.get_by_reference(result.reference or "")
    assert message is not None and message.received_at == first_posted


def test_webhook_still_without_its_call_sid_stays_refused_and_is_kept_once(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    params = call_params("x")
    del params["CallSid"]
    assert hooks.post(RECORDED, params).status_code == 400
    (item,) = Quarantine(gateway.services.store.engine).entries()
    assert item.source_ids["path"] == RECORDED

    result = replay(gateway.services, item)

    assert not result.ok
    assert result.detail.startswith("missing_parameter:") and "CallSid" in result.detail
    assert [open_item.id for open_item in Quarantine(gateway.services.store.engine).entries()] == [
        item.id
    ]
    assert count_rows(gateway.services.store, QuarantineRow) == 1


@pytest.mark.parametrize(("channel", "path"), [("phone", RECORDED), ("sms", MESSAGING)])
def test_request_refused_for_its_signature_is_never_replayed(
    gateway: RunningGateway, media: MediaServer, channel: str, path: str
) -> None:
    params = recording(media, sid("CA")) if channel == "phone" else text_message(CALLER, sid("SM"))
    item = kept(gateway, channel, params, path=path, reason="invalid_signature")

    result = replay(gateway.services, item)

    assert not result.ok
    assert "invalid_signature is not replayable" in result.detail
    assert count_rows(gateway.services.store, ComplaintRow) == 0
    assert [open_item.id for open_item in Quarantine(gateway.services.store.engine).entries()] == [
        item.id
    ]


# -- messages ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("sender", "channel"), [(CALLER, "sms"), (f"whatsapp:{CALLER}", "whatsapp")]
)
def test_message_replayed_twice_and_after_its_retry_is_one_complaint(
    gateway: RunningGateway, hooks: TwilioWebhooks, sender: str, channel: str
) -> None:
    params = text_message(sender, sid("SM"))
    first_posted = an_hour_ago()
    item = kept(gateway, channel, params, path=MESSAGING, first_posted=first_posted)

    first = replay(gateway.services, item)
    again = replay_twilio(gateway.services, item)
    retried = hooks.post(MESSAGING, params)

    assert first.ok and first.detail == "complaint recorded", first.detail
    message = gateway.services.store.complaints.get_by_reference(first.reference or "")
    assert message is not None
    assert message.channel.value == channel
    assert message.received_at == first_posted
    assert message.customer.phone == CALLER
    assert again.detail == "already recorded" and again.complaint_id == first.complaint_id
    assert retried.status_code == 200 and (first.reference or "?") in retried.text
    assert count_rows(gateway.services.store, ComplaintRow) == 1


def test_empty_message_stays_refused_when_replayed(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    assert hooks.post(MESSAGING, text_message(CALLER, sid("SM"), body="  ")).status_code == 200
    (item,) = Quarantine(gateway.services.store.engine).entries()
    assert item.reason_code == "empty_message"

    result = replay(gateway.services, item)

    assert not result.ok and result.detail.startswith("empty_message:")
    assert count_rows(gateway.services.store, QuarantineRow) == 1
    assert count_rows(gateway.services.store, ComplaintRow) == 0


# -- transcripts ------------------------------------------------------------
def kept_transcript(gateway: RunningGateway, call_sid: str, text: str) -> QuarantineItem:
    item_id = gateway.services.store.complaints.quarantine(
        channel="phone",
        data=json.dumps({"text": text, "language": "fr", "engine": "whisper"}).encode(),
        content_type="application/json",
        reason_code="invalid_field",
        reason="language: refused by a check since relaxed",
        source_ids={"call_sid": call_sid, "api_client": "call-centre-stt"},
    )
    item = Quarantine(gateway.services.store.engine).get(item_id)
    assert item is not None
    return item


def test_transcript_replayed_becomes_the_body_of_the_calls_complaint_once(
    gateway: RunningGateway, hooks: TwilioWebhooks, media: MediaServer
) -> None:
    call_sid = start_call(hooks)
    assert hooks.post(RECORDED, recording(media, call_sid)).status_code == 200
    complaint = gateway.services.store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert complaint is not None
    item = kept_transcript(gateway, call_sid, TEXT)

    result = replay(gateway.services, item)
    again = replay_twilio(gateway.services, item)

    assert result.ok, result.detail
    assert result.complaint_id == complaint.id
    call = CallStore(gateway.services.store.engine).get(call_sid)
    assert call is not None and call.transcript == TEXT
    assert again.ok and again.detail == "transcript unchanged"


def test_transcript_for_a_call_never_seen_stays_refused(gateway: RunningGateway) -> None:
    item = kept_transcript(gateway, sid("CA"), TEXT)

    result = replay(gateway.services, item)

    assert not result.ok and result.detail.startswith("not_found:")
    assert Quarantine(gateway.services.store.engine).entries()[0].id == item.id


# -- the command ------------------------------------------------------------
def test_cli_replays_a_text_message_and_prints_its_reference(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    services = build_services(settings)
    try:
        item_id = services.store.complaints.quarantine(
            channel="sms",
            data=urlencode(text_message(CALLER, sid("SM"))).encode(),
            content_type=FORM_TYPE,
            reason_code="missing_parameter",
            reason="refused by a check since relaxed",
            source_ids={"path": MESSAGING},
        )
    finally:
        services.close()

    done = intake_processes.run("quarantine", "reprocess", item_id, env=env_for(settings))

    assert done.popen.returncode == 0, done.describe()
    replayed_id, reference, _complaint = done.stdout().strip().split("\t")
    assert replayed_id == item_id and reference.startswith("CP-")
    assert "complaint recorded" in done.stderr()
