"""TwiML answers, built with twilio's own builder from the texts table.

Every URL in a TwiML answer is absolute, made from ``INTAKE_PUBLIC_BASE_URL``:
it is the URL Twilio will request and sign, so it must be the one the
signature check rebuilds.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, Say, VoiceResponse

from channels.twilio.audio import prompt_file, prompt_path
from channels.twilio.texts import IvrTable, reference_groups
from config.hours import CallCentre, DialKind

TWIML_TYPE = "application/xml"

# Paths of the voice flow; Twilio learns all but the first from our answers.
VOICE = "/twilio/voice"
VOICE_MENU = "/twilio/voice/menu"
VOICE_LANGUAGE = "/twilio/voice/language"
VOICE_RECORDED = "/twilio/voice/recorded"
VOICE_RECORDING_STATUS = "/twilio/voice/recording-status"
VOICE_TRANSCRIPTION = "/twilio/voice/transcription"
VOICE_STATUS = "/twilio/voice/status"
# The call centre: <Dial>'s action, the agent's whisper, <Enqueue>'s wait and action,
# and the URL an agent's <Dial><Queue url=...> gives to say the caller was bridged.
VOICE_DIALLED = "/twilio/voice/dialled"
VOICE_WHISPER = "/twilio/voice/whisper"
VOICE_QUEUE_WAIT = "/twilio/voice/queue-wait"
VOICE_QUEUE_LEFT = "/twilio/voice/queue-left"
VOICE_BRIDGED = "/twilio/voice/bridged"
# SIP headers that carry the caller's language and CallSid to the agent's side.
SIP_LANGUAGE_HEADER = "X-Cashplus-Language"
SIP_CALL_HEADER = "X-Cashplus-Call-Sid"
# Longest pause between two hold messages in a queue (seconds).
HOLD_PAUSE = 15
MESSAGING = "/twilio/messaging"

# Pauses of the reference read-back: between characters, between groups.
CHARACTER_PAUSE = "400ms"
GROUP_PAUSE = "900ms"


def twiml(document: VoiceResponse | MessagingResponse) -> Response:
    return Response(content=document.to_xml(), media_type=TWIML_TYPE)


def absolute(base_url: str, path: str, **query: object) -> str:
    url = base_url.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _say(parent: VoiceResponse | Gather, table: IvrTable, tag: str, text: str) -> Say:
    voice = table.voice_for(tag)
    return parent.say(text, voice=voice.voice, language=voice.language)


def _speak(
    parent: VoiceResponse | Gather, table: IvrTable, base_url: str, tag: str, name: str
) -> None:
    """Sentence ``name`` in ``tag``: its recording when there is one, else the voice."""
    if prompt_file(table, tag, name) is not None:
        parent.play(absolute(base_url, prompt_path(tag, name)))
    else:
        _say(parent, table, tag, table.texts(tag).spoken(name))


def language_menu(table: IvrTable, base_url: str, attempt: int) -> VoiceResponse:
    """The consent notice (first time) or "not understood" (again), then the menu."""
    response = VoiceResponse()
    key = "consent" if attempt == 1 else "invalid_choice"
    for tag in table.greeting:
        _speak(response, table, base_url, tag, key)
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=table.menu_timeout,
        action=absolute(base_url, VOICE_LANGUAGE, attempt=attempt),
        method="POST",
        action_on_empty_result=False,
    )
    for entry in table.menu:
        _speak(gather, table, base_url, entry.language, "menu_option")
    # No key pressed: Gather falls through to the next verb.
    response.redirect(absolute(base_url, VOICE_MENU, attempt=attempt + 1), method="POST")
    return response


def invalid_choice(base_url: str, attempt: int) -> VoiceResponse:
    response = VoiceResponse()
    response.redirect(absolute(base_url, VOICE_MENU, attempt=attempt + 1), method="POST")
    return response


def record_complaint(
    table: IvrTable, base_url: str, tag: str, before: str | None = None
) -> VoiceResponse:
    """The recording prompt in the chosen language, then <Record>.

    ``before``: a sentence said first (``closed`` out of hours, ``no_agent``).
    """
    texts = table.texts(tag)
    response = VoiceResponse()
    if before is not None:
        _speak(response, table, base_url, tag, before)
    _speak(response, table, base_url, tag, "record_prompt")
    extra: dict[str, object] = {}
    if texts.twilio_transcription:
        extra = {"transcribe": True, "transcribe_callback": absolute(base_url, VOICE_TRANSCRIPTION)}
    response.record(
        action=absolute(base_url, VOICE_RECORDED),
        method="POST",
        timeout=table.record.timeout,
        finish_on_key=table.record.finish_on_key,
        max_length=table.record.max_length,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=absolute(base_url, VOICE_RECORDING_STATUS),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
        **extra,
    )
    # Reached only when nothing was recorded (Twilio skips the action then).
    _speak(response, table, base_url, tag, "nothing_heard")
    response.hangup()
    return response


def put_through(
    table: IvrTable, base_url: str, tag: str, centre: CallCentre, call_sid: str
) -> VoiceResponse:
    """In hours: "we put you through", then <Dial> (number, SIP) or <Enqueue> (queue).

    The caller's language reaches the agent's side as a parameter: the
    whisper URL's ``language`` (number and SIP), SIP headers, or the queue's
    name (``{language}`` in ``queue:NAME``). Nobody within
    ``INTAKE_CALL_CENTRE_WAIT`` seconds: the action URL puts the caller on
    the recording prompt.
    """
    target = centre.dial
    assert target is not None  # open_at() says no without a destination
    response = VoiceResponse()
    _speak(response, table, base_url, tag, "connecting")
    if target.kind == DialKind.QUEUE:
        response.enqueue(
            target.queue_name(tag),
            action=absolute(base_url, VOICE_QUEUE_LEFT, language=tag),
            method="POST",
            wait_url=absolute(base_url, VOICE_QUEUE_WAIT, language=tag),
            wait_url_method="POST",
        )
        return response
    dial = response.dial(
        action=absolute(base_url, VOICE_DIALLED, language=tag),
        method="POST",
        timeout=centre.wait,
    )
    whisper = absolute(base_url, VOICE_WHISPER, language=tag)
    if target.kind == DialKind.NUMBER:
        dial.number(target.target, url=whisper, method="POST")
    else:
        headers = urlencode({SIP_LANGUAGE_HEADER: tag, SIP_CALL_HEADER: call_sid})
        joiner = "&" if "?" in target.target else "?"
        dial.sip(f"{target.target}{joiner}{headers}", url=whisper, method="POST")
    return response


def agent_whisper(table: IvrTable, tag: str) -> VoiceResponse:
    """Said to the agent before the call is bridged: the caller's language (in French)."""
    response = VoiceResponse()
    _say(response, table, "fr", table.texts(tag).spoken("agent_whisper"))
    return response


def queue_wait(table: IvrTable, base_url: str, tag: str, waited: int, wait: int) -> VoiceResponse:
    """While in the queue (Twilio asks again when it is over): hold on, or leave at ``wait``."""
    response = VoiceResponse()
    if waited >= wait:
        response.leave()
        return response
    _speak(response, table, base_url, tag, "hold")
    response.pause(length=max(1, min(HOLD_PAUSE, wait - waited)))
    return response


def reference_read_back(table: IvrTable, base_url: str, tag: str, reference: str) -> VoiceResponse:
    """The reference, character by character, slowly, twice; then goodbye."""
    response = VoiceResponse()
    for key in ("reference_intro", "reference_repeat"):
        _speak(response, table, base_url, tag, key)
        _spell(_say(response, table, tag, ""), reference)
    _speak(response, table, base_url, tag, "goodbye")
    response.hangup()
    return response


def _spell(say: Say, reference: str) -> None:
    slow = say.prosody(rate="slow")
    for group in reference_groups(reference):
        for character in group:
            slow.say_as(character, interpret_as="characters")
            slow.break_(time=CHARACTER_PAUSE)
        slow.break_(time=GROUP_PAUSE)


def hang_up() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def message_reply(text: str) -> MessagingResponse:
    """A reply SMS; none for an empty text (a non-complaint such as "STOP" gets no answer)."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return response


def empty() -> Response:
    """An empty TwiML document: the answer to status callbacks (nothing to do on the call)."""
    return twiml(VoiceResponse())
