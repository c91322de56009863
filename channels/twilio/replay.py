"""Replaying what the phone channel quarantined, through the handler that refused it.

``gateway.ops.quarantine.replay`` -> **here** -> the same voice step,
message handler or transcript step the webhook went to -> the normal
hand-off. What the channel keeps, and what a replay does with it:

- ``phone``, form data, ``missing_parameter``: a voice webhook (its path is
  kept) without a parameter it needs; replayed through that path's step.
- ``sms`` / ``whatsapp``, form data, ``missing_parameter`` or
  ``empty_message``: an inbound message; replayed through the message
  handler.
- ``phone``, JSON, ``invalid_json`` or ``invalid_field``: a transcript
  posted to ``/v1/calls/{CallSid}/transcript``; validated and applied again.

Every form item passed Twilio's signature check before it was kept: a
request that fails it is answered ``403`` and never stored, since anyone
can post to these URLs. So the signature is not checked again here, and
any other reason (``invalid_signature`` included) is refused: a replay
never turns a request Twilio did not sign into a complaint.

Idempotency comes from the handlers' own keys: the complaint of a call is
``twilio:call:<CallSid>``, its recording ``recording:<RecordingSid>``, a
message's complaint ``twilio:message:<MessageSid>``; replaying twice, or
after Twilio's retry got through, gives the complaint already recorded. A
call the store has never seen starts when Twilio first posted the webhook,
not when it is replayed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import ValidationError

from channels.twilio import twiml, voice
from channels.twilio.line import PhoneLine
from channels.twilio.messaging import (
    EMPTY,
    EMPTY_REASON,
    normalize_message_captures,
    record_message,
)
from channels.twilio.signature import FORM_TYPE, TwilioRequest, parse_form
from channels.twilio.transcripts import (
    CallWithoutRecording,
    TranscriptIn,
    UnknownCall,
    apply_transcript,
    twilio_transcription,
)
from gateway.lib.http.errors import ApiError, describe_validation
from gateway.lib.normalize_runner import replay_capture
from gateway.lib.services import Services
from gateway.store.calls import call_complaint_key
from gateway.store.quarantine import QuarantineItem, ReplayResult
from normalizer.contract import Channel

JSON_TYPE = "application/json"
_MESSAGE_REASONS = frozenset({"missing_parameter", EMPTY})

# (quarantine channel, content type) -> the reasons a replay may retry.
REPLAYABLE: dict[tuple[str, str], frozenset[str]] = {
    (Channel.PHONE.value, FORM_TYPE): frozenset({"missing_parameter"}),
    (Channel.SMS.value, FORM_TYPE): _MESSAGE_REASONS,
    (Channel.WHATSAPP.value, FORM_TYPE): _MESSAGE_REASONS,
    (Channel.PHONE.value, JSON_TYPE): frozenset({"invalid_json", "invalid_field"}),
}


@dataclass(frozen=True)
class VoiceStep:
    what: str
    run: Callable[[PhoneLine, TwilioRequest], object]
    # Whether this step records the call's complaint (the recording).
    records: bool = False


# Webhook path -> the step its handler runs (the routes in ``routes.py``).
# The menu URL only reaches the store once the attempts are used up.
VOICE_STEPS: dict[str, VoiceStep] = {
    twiml.VOICE: VoiceStep("incoming call", voice.incoming_call),
    twiml.VOICE_MENU: VoiceStep("default language", voice.default_language),
    twiml.VOICE_LANGUAGE: VoiceStep("language choice", voice.choose_language),
    twiml.VOICE_RECORDED: VoiceStep("recording", voice.recording_ready, records=True),
    twiml.VOICE_RECORDING_STATUS: VoiceStep(
        "recording status", voice.recording_status, records=True
    ),
    twiml.VOICE_TRANSCRIPTION: VoiceStep("Twilio transcription", twilio_transcription),
    twiml.VOICE_STATUS: VoiceStep("call status", voice.call_over),
}


def replay_twilio(services: Services, item: QuarantineItem) -> ReplayResult:
    """A quarantined webhook or transcript run through its handler again."""
    # A captured message the runner quarantined (its step raised): the runner's step again.
    replayed = replay_capture(services, item, normalize_message_captures)
    return replayed if replayed is not None else _replay_refused(services, item)


def _replay_refused(services: Services, item: QuarantineItem) -> ReplayResult:
    """A webhook or transcript the edge refused for its content, through its handler."""
    content_type = item.content_type.split(";")[0].strip().lower()
    allowed = REPLAYABLE.get((item.channel, content_type), frozenset())
    if item.reason_code not in allowed:
        return ReplayResult(
            False,
            f"{item.reason_code} is not replayable on {item.channel} ({content_type}): only "
            "signed Twilio webhooks and transcripts refused for their content are",
        )
    received_at = _received_at(item)
    line = replace(
        PhoneLine.of(services),
        calls=services.store.calls(first_seen_at=received_at),
        keeps_refusals=False,
    )
    data = services.store.blobs.get(item.stored_at)
    try:
        if content_type == JSON_TYPE:
            return _replay_transcript(line, item, data)
        params = parse_form(data)
        if params is None:
            return ReplayResult(False, "body is not UTF-8 form data")
        path = str(item.source_ids.get("path") or twiml.MESSAGING)
        request = TwilioRequest(params=params, body=data, path=path, received_at=received_at)
        if item.channel == Channel.PHONE.value:
            return _replay_voice(line, request)
        return _replay_message(line, request)
    except ApiError as exc:  # what the handler answers Twilio: still refused
        return ReplayResult(False, f"{exc.code}: {exc.message}")


def _received_at(item: QuarantineItem) -> datetime:
    """When Twilio posted it: kept with the item, or (older items) when it was quarantined."""
    kept = item.source_ids.get("received_at")
    try:
        return datetime.fromisoformat(kept) if isinstance(kept, str) else item.created_at
    except ValueError:
        return item.created_at


def _replay_voice(line: PhoneLine, request: TwilioRequest) -> ReplayResult:
    step = VOICE_STEPS.get(request.path)
    if step is None:
        return ReplayResult(False, f"no voice step for a webhook on {request.path}")
    call_sid = request.get("CallSid")
    complaints = line.services.store.complaints
    key = call_complaint_key(call_sid)
    existed = bool(call_sid) and complaints.find_by_dedup_key(key) is not None
    step.run(line, request)
    message = complaints.find_by_dedup_key(key)
    if step.records and message is not None:
        detail = "already recorded" if existed else "complaint recorded"
    else:
        detail = f"{step.what} of call {call_sid} replayed"
    return ReplayResult(
        True,
        detail,
        complaint_id=message.id if message else None,
        reference=message.reference if message else None,
    )


def _replay_message(line: PhoneLine, request: TwilioRequest) -> ReplayResult:
    recorded = record_message(line, request)
    if recorded is None:
        return ReplayResult(False, f"{EMPTY}: {EMPTY_REASON}")
    message, created = recorded
    return ReplayResult(
        True,
        "complaint recorded" if created else "already recorded",
        complaint_id=message.id,
        reference=message.reference,
    )


def _replay_transcript(line: PhoneLine, item: QuarantineItem, data: bytes) -> ReplayResult:
    call_sid = str(item.source_ids.get("call_sid") or "")
    try:
        payload = TranscriptIn.model_validate_json(data)
    except ValidationError as exc:
        code, message, _field = describe_validation(list(exc.errors()))
        return ReplayResult(False, f"{code}: {message}")
    try:
        accepted = apply_transcript(
            line,
            call_sid,
            payload.text,
            language=payload.language,
            source=payload.engine or str(item.source_ids.get("api_client") or "replay"),
            evidence=data,
            evidence_type=JSON_TYPE,
        )
    except UnknownCall:
        return ReplayResult(False, f"not_found: no call {call_sid}")
    except CallWithoutRecording:
        return ReplayResult(False, f"call_without_recording: call {call_sid} has no recording")
    return ReplayResult(
        True,
        f"transcript {accepted.outcome}",
        complaint_id=accepted.complaint_id,
        reference=accepted.reference,
    )
