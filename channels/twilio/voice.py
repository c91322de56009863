"""The voice flow, step by step: what each Twilio callback changes in the store.

Blocking functions (database, disk) that the routes run in a worker thread
and that answer nothing themselves; the routes turn their result into
TwiML. Every step is idempotent on Twilio's identifiers (CallSid,
RecordingSid), because Twilio retries.

- incoming call: the call is noted (state ``menu``);
- language choice: noted (state ``recording``);
- recording ready (the ``<Record>`` action, or the recording-status callback
  if the action was lost): the recording is queued for download and the
  complaint is recorded, its publication held until it is complete;
- in opening hours (``INTAKE_CALL_CENTRE_HOURS``), after the choice: the
  caller is put through (state ``connecting``); an agent's answer makes it
  ``answered`` (no recording then: the agent types the complaint, linked to
  the call by its CallSid through ``POST /v1/complaints``); nobody within
  ``INTAKE_CALL_CENTRE_WAIT`` seconds: back to ``recording``, the caller
  leaves a message;
- call over: a call that ended at the menu is a missed call at once; one
  that ended while put through or during the recording gets
  ``INTAKE_CALL_END_GRACE`` seconds for the dial's outcome or its recording
  to show up before the worker calls it missed.

A missed call, a recording Twilio reports ``absent`` or one shorter than
``INTAKE_CALL_SHORT_MESSAGE`` is also a call to return (``call_backs``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from channels.twilio.call_backs import note_empty, note_missed, short_message
from channels.twilio.line import PhoneLine, phone_or_none, record_held, refresh, reject
from channels.twilio.signature import FORM_TYPE, TwilioRequest
from channels.twilio.texts import MenuEntry
from gateway.store.calls import WITHOUT_RECORDING, Call, CallState
from gateway.store.media import NewMedia
from gateway.store.revisions import IVR_DEFAULT_METHOD, call_language
from normalizer.contract import Channel, ComplaintMessage, Customer
from normalizer.draft import ComplaintDraft, RawInput

log = logging.getLogger("intake.twilio")

MISSED_KIND = "call.missed"
IVR_METHOD = "ivr"
# CallStatus values that end a call (Twilio's call status callback).
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
RECORDING_FORMAT = ".wav"


def required(line: PhoneLine, request: TwilioRequest, *names: str) -> list[str]:
    """The named parameters, or a quarantined ``400`` naming the first one missing."""
    values = [request.get(name) for name in names]
    for name, value in zip(names, values, strict=True):
        if not value:
            raise reject(
                line,
                Channel.PHONE.value,
                request,
                "missing_parameter",
                f"webhook on {request.path} without {name}",
                ids={"call_sid": request.get("CallSid") or None},
            )
    return values


def incoming_call(line: PhoneLine, request: TwilioRequest) -> Call:
    (call_sid,) = required(line, request, "CallSid")
    return line.calls.start(
        call_sid,
        account_sid=request.get("AccountSid") or None,
        caller=phone_or_none(request.get("From")),
        called=phone_or_none(request.get("To")),
    )


def choose_language(line: PhoneLine, request: TwilioRequest) -> MenuEntry | None:
    """The caller's key press, noted; None if the key is not on the menu."""
    (call_sid,) = required(line, request, "CallSid")
    choice = line.table.choice(request.get("Digits"))
    if choice is not None:
        line.calls.choose_language(call_sid, choice.language, IVR_METHOD)
    return choice


def default_language(line: PhoneLine, request: TwilioRequest) -> MenuEntry:
    """No usable key after every attempt: go on in the menu's default language."""
    (call_sid,) = required(line, request, "CallSid")
    choice = line.table.default_choice
    line.calls.choose_language(call_sid, choice.language, IVR_DEFAULT_METHOD)
    return choice


# <Dial>'s DialCallStatus and <Enqueue>'s QueueResult that mean an agent took the call.
ANSWERED_DIAL = frozenset({"completed", "answered"})
BRIDGED_QUEUE = "bridged"
HUNG_UP_QUEUE = "hangup"


def put_through(line: PhoneLine, request: TwilioRequest) -> bool:
    """After the language choice: True (noted ``connecting``) if the call centre is open now."""
    (call_sid,) = required(line, request, "CallSid")
    if not line.call_centre.open_at(datetime.now(UTC)):
        return False
    line.calls.move(call_sid, (CallState.MENU, CallState.RECORDING), CallState.CONNECTING)
    return True


def closed_sentence(line: PhoneLine) -> str | None:
    """Out of hours, the sentence before the recording prompt (None: no call centre at all)."""
    return None if line.call_centre.dial is None else "closed"


def dial_over(line: PhoneLine, request: TwilioRequest) -> bool:
    """<Dial>'s action: True if an agent answered; else the caller goes on to leave a message."""
    call_sid, status = required(line, request, "CallSid", "DialCallStatus")
    return _agent_outcome(line, call_sid, answered=status in ANSWERED_DIAL)


def queue_left(line: PhoneLine, request: TwilioRequest) -> bool | None:
    """<Enqueue>'s action: True (bridged), False (left: leave a message), None (caller hung up)."""
    call_sid, result = required(line, request, "CallSid", "QueueResult")
    if result == HUNG_UP_QUEUE:
        return None
    return _agent_outcome(line, call_sid, answered=result == BRIDGED_QUEUE)


def agent_answered(line: PhoneLine, request: TwilioRequest) -> None:
    """The agent's side is up (whisper: ``ParentCallSid``; a queue's bridge URL: ``CallSid``)."""
    (call_sid,) = required(line, request, "CallSid")
    parent = request.get("ParentCallSid") or call_sid
    line.calls.move(parent, (CallState.CONNECTING, CallState.RECORDING), CallState.ANSWERED)


def _agent_outcome(line: PhoneLine, call_sid: str, *, answered: bool) -> bool:
    if answered:
        line.calls.move(call_sid, (CallState.CONNECTING,), CallState.ANSWERED)
        return True
    call = line.calls.move(call_sid, (CallState.CONNECTING,), CallState.RECORDING)
    # An agent's whisper already marked it answered: the bridge happened after all.
    return call.state == CallState.ANSWERED


def spoken_language(line: PhoneLine, request: TwilioRequest, asked: str | None) -> str:
    """The language a call-centre callback speaks: its signed ``language``, else the call's."""
    if asked in line.table.spoken_languages:
        return str(asked)
    call = line.calls.get(request.get("CallSid"))
    if call is not None and call.language in line.table.languages:
        return str(call.language)
    return line.table.default_choice.language


def recording_ready(line: PhoneLine, request: TwilioRequest) -> tuple[ComplaintMessage, str]:
    """Queue the recording's download and record the complaint (once per call).

    Returns the complaint and the language to speak to the caller in.
    """
    call_sid, recording_sid, recording_url = required(
        line, request, "CallSid", "RecordingSid", "RecordingUrl"
    )
    call = line.calls.note_recording(
        call_sid,
        recording_sid=recording_sid,
        recording_url=recording_url,
        caller=phone_or_none(request.get("From")),
        called=phone_or_none(request.get("To")),
        account_sid=request.get("AccountSid") or None,
    )
    audio_url = recording_url + RECORDING_FORMAT
    line.media.add(
        [
            NewMedia(
                media_key=f"recording:{recording_sid}",
                complaint_key=call.complaint_key,
                position=0,
                url=audio_url,
                name=f"{recording_sid}{RECORDING_FORMAT}",
                declared_type="audio/x-wav",
            )
        ]
    )
    message, created = record_held(
        line,
        _raw_call(request, call, recording_sid, recording_url, audio_url),
        _draft(call),
        line.settings.call_transcript_wait,
    )
    if created:
        # The download or a transcript may have beaten this webhook.
        refresh(line, call.complaint_key)
    if short_message(line, request.get("RecordingDuration")):
        note_empty(line, call_sid, caller=request.get("From"), reference=message.reference)
    else:
        # Called missed before its recording showed up: the call to return names it.
        line.services.store.call_backs.link(call_sid, message.reference)
    spoken = call.language if call.language in line.table.languages else None
    return message, spoken or line.table.default_choice.language


def recording_status(line: PhoneLine, request: TwilioRequest) -> None:
    """The recording-status callback: a completed recording, in case its action request was lost;
    an ``absent`` one (nothing was recorded): the call is to be returned."""
    status = request.get("RecordingStatus")
    if status == "completed":
        recording_ready(line, request)
    elif status == "absent":
        (call_sid,) = required(line, request, "CallSid")
        note_empty(line, call_sid, caller=request.get("From"))


def _raw_call(
    request: TwilioRequest, call: Call, recording_sid: str, recording_url: str, audio_url: str
) -> RawInput:
    return RawInput(
        channel=Channel.PHONE,
        data=request.body,
        content_type=FORM_TYPE,
        received_at=call.started_at,
        dedup_key=call.complaint_key,
        source_ids={
            "call_sid": call.call_sid,
            "recording_sid": recording_sid,
            "recording_url": recording_url,
            # Not downloaded yet: the message says so until it is.
            "missing_media": [audio_url],
        },
    )


def _draft(call: Call) -> ComplaintDraft:
    tag = call.language or "und"
    method = call.language_method or IVR_DEFAULT_METHOD
    return ComplaintDraft(
        channel=Channel.PHONE,
        received_at=call.started_at,
        body="",  # the transcript, when one comes
        customer=Customer(phone=call.caller),
        language=call_language(tag, method, None, None),
    )


def call_over(line: PhoneLine, request: TwilioRequest) -> None:
    """The call-status callback: note the end; a call that never got past the menu is missed."""
    call_sid, status = required(line, request, "CallSid", "CallStatus")
    if status not in FINAL_STATUSES:
        return
    call = line.calls.end(call_sid, status, request.body.decode("utf-8"))
    if call.state == CallState.MENU:
        declare_missed(line, call)


def declare_missed(line: PhoneLine, call: Call) -> bool:
    """Publish ``event.call.missed`` for a call without recording; False if it has one."""
    if call.state not in WITHOUT_RECORDING:
        return False
    ended_at = call.ended_at or datetime.now(UTC)
    raw = RawInput(
        channel=Channel.PHONE,
        data=(call.end_request or "").encode(),
        content_type=FORM_TYPE,
        received_at=ended_at,
        dedup_key=f"twilio:call-missed:{call.call_sid}",
        source_ids={"call_sid": call.call_sid},
    )
    details = {
        "call_sid": call.call_sid,
        "caller": call.caller,
        "called": call.called,
        "call_status": call.final_status,
        "stage": call.state.value,  # menu, connecting (nobody answered) or recording
        "language": call.language,
        "started_at": call.started_at.isoformat(),
        "ended_at": ended_at.isoformat(),
    }
    # The call to return and the event first: a crash after either repeats them
    # harmlessly (one per CallSid, same dedup key) until the call is marked missed.
    note_missed(line, call)
    event, created = line.services.store.complaints.record_event(raw, MISSED_KIND, details)
    line.calls.mark_missed(call.call_sid)
    if created:
        log.info("missed call at the %s: event %s", details["stage"], event.id)
    return True
