"""The Twilio webhooks of the 0520020915 line: thin handlers, signature first.

The two URLs an operator pastes into Twilio's console for the number:

- ``POST /twilio/voice``: "A call comes in";
- ``POST /twilio/messaging``: "A message comes in" (SMS and WhatsApp);

and, for missed calls, ``POST /twilio/voice/status`` as the number's "Call
status changes" URL. Every other URL is given to Twilio inside our TwiML,
but one: with a queue (``INTAKE_CALL_CENTRE_DIAL=queue:NAME``), the agents'
side dequeues with ``<Dial><Queue url="…/twilio/voice/bridged">``, which
tells us the caller reached someone. Recorded prompts are served unsigned at
``GET /twilio/prompts/<language>/<name>.mp3`` for ``<Play>``.

Each handler checks the signature (``verified_twilio_request``), lets a
worker thread change the store, and only then answers: the TwiML goes out
after the commit. Our failures (store down) are a ``503`` from the app's
error handlers; Twilio then plays the number's fallback, if one is set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from channels.twilio import messaging, twiml, voice
from channels.twilio.audio import PROMPT_PATH, SUFFIX, prompt_file
from channels.twilio.line import PhoneLine
from channels.twilio.signature import TwilioRequest, verified_twilio_request
from channels.twilio.transcripts import build_transcript_router, twilio_transcription
from gateway.lib.capture_queue import CaptureQueue
from gateway.lib.http.errors import ApiError
from gateway.lib.services import Services

Verified = Annotated[TwilioRequest, Depends(verified_twilio_request)]
Attempt = Annotated[int, Query(ge=1, le=20)]
# The caller's language on a call-centre callback's URL (ours, so signed with it).
Language = Annotated[str | None, Query(max_length=16)]
_TWIML_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {twiml.TWIML_TYPE: {}}, "description": "TwiML"},
    400: {},
    403: {"description": "not signed by Twilio"},
    503: {},
}


def build_router(services: Services) -> APIRouter:
    line = PhoneLine.of(services)
    # Messages' captures committed a batch at a time by one writer thread.
    writer = CaptureQueue(services.store.captures)
    router = APIRouter(tags=["twilio"], responses=_TWIML_RESPONSES)
    _voice_routes(router, line)
    _callback_routes(router, line)

    @router.post(twiml.MESSAGING, response_class=Response)
    async def message(request: Verified) -> Response:
        reply = await messaging.receive_message(line, request, writer)
        return twiml.twiml(twiml.message_reply(reply))

    router.include_router(build_transcript_router(line))

    @router.get(
        f"{PROMPT_PATH}/{{tag}}/{{name}}{SUFFIX}",
        response_class=FileResponse,
        responses={200: {"content": {"audio/mpeg": {}}}, 404: {}},
    )
    async def prompt(tag: str, name: str) -> FileResponse:
        """A recorded prompt for <Play> (public: the same sentence for every caller)."""
        found = prompt_file(line.table, tag, name)
        if found is None:
            raise ApiError(404, "not_found", "no such recorded prompt")
        return FileResponse(found, media_type="audio/mpeg")

    return router


def _voice_routes(router: APIRouter, line: PhoneLine) -> None:
    @router.post(twiml.VOICE, response_class=Response)
    async def incoming_call(request: Verified) -> Response:
        await run_in_threadpool(voice.incoming_call, line, request)
        return twiml.twiml(twiml.language_menu(line.table, line.base_url, attempt=1))

    @router.post(twiml.VOICE_MENU, response_class=Response)
    async def menu_again(request: Verified, attempt: Attempt = 2) -> Response:
        if attempt <= line.table.menu_attempts:
            return twiml.twiml(twiml.language_menu(line.table, line.base_url, attempt))
        choice = await run_in_threadpool(voice.default_language, line, request)
        return await _after_choice(request, choice.language)

    @router.post(twiml.VOICE_LANGUAGE, response_class=Response)
    async def language_chosen(request: Verified, attempt: Attempt = 1) -> Response:
        choice = await run_in_threadpool(voice.choose_language, line, request)
        if choice is None:
            return twiml.twiml(twiml.invalid_choice(line.base_url, attempt))
        return await _after_choice(request, choice.language)

    async def _after_choice(request: TwilioRequest, tag: str) -> Response:
        """In hours, put through to an agent; out of hours, the caller leaves a message."""
        if await run_in_threadpool(voice.put_through, line, request):
            call_sid = request.get("CallSid")
            centre = line.call_centre
            return twiml.twiml(twiml.put_through(line.table, line.base_url, tag, centre, call_sid))
        before = voice.closed_sentence(line)
        return twiml.twiml(twiml.record_complaint(line.table, line.base_url, tag, before))

    @router.post(twiml.VOICE_RECORDED, response_class=Response)
    async def recorded(request: Verified) -> Response:
        message, spoken = await run_in_threadpool(voice.recording_ready, line, request)
        return twiml.twiml(
            twiml.reference_read_back(line.table, line.base_url, spoken, message.reference)
        )

    _call_centre_routes(router, line)


def _call_centre_routes(router: APIRouter, line: PhoneLine) -> None:
    """Twilio's callbacks while a caller is put through: the dial's and the queue's outcomes."""

    async def _language(request: TwilioRequest, asked: str | None) -> str:
        return await run_in_threadpool(voice.spoken_language, line, request, asked)

    @router.post(twiml.VOICE_DIALLED, response_class=Response)
    async def dialled(request: Verified, language: Language = None) -> Response:
        answered = await run_in_threadpool(voice.dial_over, line, request)
        if answered:
            return twiml.twiml(twiml.hang_up())
        tag = await _language(request, language)
        return twiml.twiml(twiml.record_complaint(line.table, line.base_url, tag, "no_agent"))

    @router.post(twiml.VOICE_QUEUE_LEFT, response_class=Response)
    async def queue_left(request: Verified, language: Language = None) -> Response:
        outcome = await run_in_threadpool(voice.queue_left, line, request)
        if outcome is None:
            return twiml.empty()
        if outcome:
            return twiml.twiml(twiml.hang_up())
        tag = await _language(request, language)
        return twiml.twiml(twiml.record_complaint(line.table, line.base_url, tag, "no_agent"))

    @router.post(twiml.VOICE_QUEUE_WAIT, response_class=Response)
    async def queue_wait(request: Verified, language: Language = None) -> Response:
        tag = await _language(request, language)
        queue_time = request.get("QueueTime")
        waited = int(queue_time) if queue_time.isdigit() else 0
        centre = line.call_centre
        return twiml.twiml(twiml.queue_wait(line.table, line.base_url, tag, waited, centre.wait))

    @router.post(twiml.VOICE_WHISPER, response_class=Response)
    async def whisper(request: Verified, language: Language = None) -> Response:
        await run_in_threadpool(voice.agent_answered, line, request)
        tag = await _language(request, language)
        return twiml.twiml(twiml.agent_whisper(line.table, tag))

    @router.post(twiml.VOICE_BRIDGED, response_class=Response)
    async def bridged(request: Verified) -> Response:
        await run_in_threadpool(voice.agent_answered, line, request)
        return twiml.empty()


def _callback_routes(router: APIRouter, line: PhoneLine) -> None:
    @router.post(twiml.VOICE_RECORDING_STATUS, response_class=Response)
    async def recording_status(request: Verified) -> Response:
        await run_in_threadpool(voice.recording_status, line, request)
        return twiml.empty()

    @router.post(twiml.VOICE_TRANSCRIPTION, response_class=Response)
    async def transcription(request: Verified) -> Response:
        await run_in_threadpool(twilio_transcription, line, request)
        return twiml.empty()

    @router.post(twiml.VOICE_STATUS, response_class=Response)
    async def call_status(request: Verified) -> Response:
        await run_in_threadpool(voice.call_over, line, request)
        return twiml.empty()
