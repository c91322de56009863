"""TwiML answers, built with twilio's own builder from the texts table.

Every URL in a TwiML answer is absolute, made from ``INTAKE_PUBLIC_BASE_URL``:
it is the URL Twilio will request and sign, so it must be the one the
signature check rebuilds.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Say, VoiceResponse

from channels.twilio.texts import IvrTable, reference_groups

TWIML_TYPE = "application/xml"

# Paths of the voice flow; Twilio learns all but the first from our answers.
VOICE = "/twilio/voice"
VOICE_MENU = "/twilio/voice/menu"
VOICE_LANGUAGE = "/twilio/voice/language"
VOICE_RECORDED = "/twilio/voice/recorded"
VOICE_RECORDING_STATUS = "/twilio/voice/recording-status"
VOICE_TRANSCRIPTION = "/twilio/voice/transcription"
VOICE_STATUS = "/twilio/voice/status"
MESSAGING = "/twilio/messaging"

# Pauses of the reference read-back: between characters, between groups.
CHARACTER_PAUSE = "400ms"
GROUP_PAUSE = "900ms"


def twiml(document: VoiceResponse | MessagingResponse) -> Response:
    return Response(content=document.to_xml(), media_type=TWIML_TYPE)


def absolute(base_url: str, path: str, **query: object) -> str:
    url = base_url.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def _say(parent: VoiceResponse, table: IvrTable, tag: str, text: str) -> Say:
    voice = table.voice_for(tag)
    return parent.say(text, voice=voice.voice, language=voice.language)


def language_menu(table: IvrTable, base_url: str, attempt: int) -> VoiceResponse:
    """The consent notice (first time) or "not understood" (again), then the menu."""
    response = VoiceResponse()
    key = "consent" if attempt == 1 else "invalid_choice"
    for tag in table.greeting:
        _say(response, table, tag, table.texts(tag).spoken(key))
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=table.menu_timeout,
        action=absolute(base_url, VOICE_LANGUAGE, attempt=attempt),
        method="POST",
        action_on_empty_result=False,
    )
    for entry in table.menu:
        voice = table.voice_for(entry.language)
        gather.say(
            table.texts(entry.language).spoken("menu_option"),
            voice=voice.voice,
            language=voice.language,
        )
    # No key pressed: Gather falls through to the next verb.
    response.redirect(absolute(base_url, VOICE_MENU, attempt=attempt + 1), method="POST")
    return response


def invalid_choice(base_url: str, attempt: int) -> VoiceResponse:
    response = VoiceResponse()
    response.redirect(absolute(base_url, VOICE_MENU, attempt=attempt + 1), method="POST")
    return response


def record_complaint(table: IvrTable, base_url: str, tag: str) -> VoiceResponse:
    """The recording prompt in the chosen language, then <Record>."""
    texts = table.texts(tag)
    response = VoiceResponse()
    _say(response, table, tag, texts.spoken("record_prompt"))
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
    _say(response, table, tag, texts.spoken("nothing_heard"))
    response.hangup()
    return response


def reference_read_back(table: IvrTable, tag: str, reference: str) -> VoiceResponse:
    """The reference, character by character, slowly, twice; then goodbye."""
    texts = table.texts(tag)
    response = VoiceResponse()
    for key in ("reference_intro", "reference_repeat"):
        _say(response, table, tag, texts.spoken(key))
        _spell(_say(response, table, tag, ""), reference)
    _say(response, table, tag, texts.spoken("goodbye"))
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
    response = MessagingResponse()
    response.message(text)
    return response


def empty() -> Response:
    """An empty TwiML document: the answer to status callbacks (nothing to do on the call)."""
    return twiml(VoiceResponse())
