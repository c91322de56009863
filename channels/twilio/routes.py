"""The Twilio webhooks of the 0520020915 line: thin handlers, signature first.

The two URLs an operator pastes into Twilio's console for the number:

- ``POST /twilio/voice``: "A call comes in";
- ``POST /twilio/messaging``: "A message comes in" (SMS and WhatsApp);

and, for missed calls, ``POST /twilio/voice/status`` as the number's "Call
status changes" URL. Every other URL is given to Twilio inside our TwiML.

Each handler checks the signature (``verified_twilio_request``), lets a
worker thread change the store, and only then answers: the TwiML goes out
after the commit. Our failures (store down) are a ``503`` from the app's
error handlers; Twilio then plays the number's fallback, if one is set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from channels.twilio import messaging, twiml, voice
from channels.twilio.line import PhoneLine
from channels.twilio.signature import TwilioRequest, verified_twilio_request
from channels.twilio.transcripts import build_transcript_router, twilio_transcription
from gateway.lib.services import Services

Verified = Annotated[TwilioRequest, Depends(verified_twilio_request)]
Attempt = Annotated[int, Query(ge=1, le=20)]
_TWIML_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {twiml.TWIML_TYPE: {}}, "description": "TwiML"},
    400: {},
    403: {"description": "not signed by Twilio"},
    503: {},
}


def build_router(services: Services) -> APIRouter:
    line = PhoneLine.of(services)
    router = APIRouter(tags=["twilio"], responses=_TWIML_RESPONSES)
    _voice_routes(router, line)
    _callback_routes(router, line)

    @router.post(twiml.MESSAGING, response_class=Response)
    async def message(request: Verified) -> Response:
        reply = await run_in_threadpool(messaging.receive_message, line, request)
        return twiml.twiml(twiml.message_reply(reply))

    router.include_router(build_transcript_router(line))
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
        return twiml.twiml(twiml.record_complaint(line.table, line.base_url, choice.language))

    @router.post(twiml.VOICE_LANGUAGE, response_class=Response)
    async def language_chosen(request: Verified, attempt: Attempt = 1) -> Response:
        choice = await run_in_threadpool(voice.choose_language, line, request)
        if choice is None:
            return twiml.twiml(twiml.invalid_choice(line.base_url, attempt))
        return twiml.twiml(twiml.record_complaint(line.table, line.base_url, choice.language))

    @router.post(twiml.VOICE_RECORDED, response_class=Response)
    async def recorded(request: Verified) -> Response:
        message, spoken = await run_in_threadpool(voice.recording_ready, line, request)
        return twiml.twiml(twiml.reference_read_back(line.table, spoken, message.reference))


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
