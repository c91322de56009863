"""Calls to return: what the phone line notes when a caller is left without an answer.

- a call that ends without a recording (``voice.declare_missed``):
  ``out_of_hours_no_message`` when the call centre was closed when it came
  in, else ``missed`` (nobody answered, or the caller hung up first);
- a message that is empty: Twilio's recording-status ``absent`` (nothing
  recorded), a recording shorter than ``INTAKE_CALL_SHORT_MESSAGE``
  seconds, or Twilio's transcription with no text: ``empty_message``,
  with the call's complaint reference when it has one.

A withheld number cannot be called back: nothing is noted then (the
missed-call event still is). The rows are ``gateway.store.call_backs``'s;
staff work through them on ``/ops/callbacks/``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from channels.twilio.line import PhoneLine, phone_or_none
from gateway.store.calls import Call
from gateway.store.tables import EMPTY_MESSAGE, MISSED, OUT_OF_HOURS_NO_MESSAGE

log = logging.getLogger("intake.twilio")


def missed_reason(line: PhoneLine, call: Call) -> str:
    """``out_of_hours_no_message`` if the call came in while the call centre was closed."""
    centre = line.call_centre
    if centre.dial is not None and not centre.open_at(call.started_at):
        return OUT_OF_HOURS_NO_MESSAGE
    return MISSED


def note_missed(line: PhoneLine, call: Call) -> None:
    """A call over without any recording: to return, unless the number was withheld."""
    reason = missed_reason(line, call)
    _note(line, call.call_sid, call.caller, call.language, reason, call.started_at)


def note_empty(
    line: PhoneLine,
    call_sid: str,
    *,
    caller: str | None = None,
    reference: str | None = None,
) -> None:
    """The caller's message is empty: to return, linked to the call's complaint if any."""
    call = line.calls.get(call_sid)
    number = (call.caller if call is not None else None) or phone_or_none(caller or "")
    language = call.language if call is not None else None
    started_at = call.started_at if call is not None else None
    _note(line, call_sid, number, language, EMPTY_MESSAGE, started_at, reference)


def short_message(line: PhoneLine, duration: str) -> bool:
    """Whether Twilio's ``RecordingDuration`` (seconds) is under ``INTAKE_CALL_SHORT_MESSAGE``."""
    return duration.isdigit() and int(duration) < line.settings.call_short_message


def _note(  # noqa: PLR0917
    line: PhoneLine,
    call_sid: str,
    caller: str | None,
    language: str | None,
    reason: str,
    received_at: datetime | None,
    reference: str | None = None,
) -> None:
    if caller is None:
        log.info("call %s (%s) not to return: no caller number", call_sid, reason)
        return
    if received_at is None:
        return  # no such call: a webhook for a call this line never saw
    line.services.store.call_backs.note(
        call_sid,
        caller=caller,
        language=language,
        reason=reason,
        received_at=received_at,
        reference=reference,
    )
    log.info("call %s to return (%s)", call_sid, reason)
