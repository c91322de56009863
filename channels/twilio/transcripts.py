"""Transcripts of calls: Twilio's own (English only) and any speech-to-text engine's.

``POST /v1/calls/{CallSid}/transcript`` (a partner API key with the scope
``transcripts:write``, 403 otherwise) lets the call centre's engine attach a
transcript to a call at any time; the answer names the call's complaint
(``complaint_id``, ``reference``) only to a key that may read it
(``complaints:read-all``: a call's complaint is no partner's own). Twilio's
``transcribeCallback`` lands in the same place. The request is kept as
evidence, the transcript becomes the complaint's body, and its language is
checked against the caller's menu choice (``gateway.store.revisions``).
A Twilio transcription without words (failed, or empty) makes the call
one to return (``call_backs``).
Before publication the queued message is rewritten; after, an amendment is
published. The same text twice changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.twilio.call_backs import note_empty
from channels.twilio.line import PhoneLine, refresh
from channels.twilio.signature import FORM_TYPE, TwilioRequest
from channels.twilio.voice import required
from gateway.lib.http.auth import require_scope
from gateway.lib.http.errors import ApiError, describe_validation
from gateway.store.apikeys import ApiClient
from gateway.store.calls import CallState, KeepTranscript, Transcript
from normalizer.contract import Channel, LanguageTag
from normalizer.errors import InputRejected
from normalizer.language import declared_language, detect_text_language
from normalizer.pipeline import clean_text

log = logging.getLogger("intake.twilio")

Outcome = Literal["waiting", "rewritten", "released", "amended", "unchanged"]


class TranscriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000, description="What the caller said")
    language: LanguageTag | None = Field(
        default=None, description="BCP 47 tag the engine transcribed in; detected when absent"
    )
    engine: str | None = Field(default=None, max_length=100, description="Name of the engine")


class TranscriptAccepted(BaseModel):
    call_sid: str
    complaint_id: str | None
    reference: str | None
    outcome: Outcome = Field(
        description=(
            "waiting: the call's complaint is not recorded yet, the transcript will be used; "
            "rewritten/released: the complaint was not published yet and now carries it; "
            "amended: an amendment was queued; unchanged: the same transcript again"
        )
    )


class UnknownCall(InputRejected):
    """No call with that CallSid."""


class CallWithoutRecording(InputRejected):
    """The call ended before anything was recorded: there is no complaint to transcribe."""


def apply_transcript(
    line: PhoneLine,
    call_sid: str,
    text: str,
    *,
    language: str | None,
    source: str,
    evidence: bytes,
    evidence_type: str,
) -> TranscriptAccepted:
    call = line.calls.get(call_sid)
    if call is None:
        raise UnknownCall(call_sid)
    if call.state == CallState.MISSED:
        raise CallWithoutRecording(call_sid)
    stored = line.services.store.blobs.put(evidence)
    clean = clean_text(text)
    # The engine knows what language it transcribed in; otherwise the text tells.
    heard = declared_language(language) if language else detect_text_language(clean)
    tag, confidence = heard.tag, heard.confidence
    keep = KeepTranscript(
        call_sid,
        Transcript(
            text=clean,
            sha256=hashlib.sha256(clean.encode()).hexdigest(),
            language=tag,
            confidence=confidence,
            source=source,
            evidence=stored.location,
        ),
    )
    revision = refresh(line, call.complaint_key, keep)
    log.info("transcript for call %s from %s (%s, %s)", call_sid, source, evidence_type, tag)
    if revision is None:
        return TranscriptAccepted(
            call_sid=call_sid, complaint_id=None, reference=None, outcome="waiting"
        )
    outcome: Outcome = revision.outcome.value if keep.changed else "unchanged"
    return TranscriptAccepted(
        call_sid=call_sid,
        complaint_id=revision.message.id,
        reference=revision.message.reference,
        outcome=outcome,
    )


def twilio_transcription(line: PhoneLine, request: TwilioRequest) -> None:
    """Twilio's ``transcribeCallback``: used when it completed with some text."""
    (call_sid,) = required(line, request, "CallSid")
    text, status = request.get("TranscriptionText"), request.get("TranscriptionStatus")
    if status != "completed" or not text.strip():
        log.info("Twilio transcription of call %s: %s", call_sid, status or "no status")
        if status in {"completed", "failed"}:
            _without_words(line, call_sid)
        return
    try:
        apply_transcript(
            line,
            call_sid,
            text,
            language=None,
            source="twilio",
            evidence=request.body,
            evidence_type=FORM_TYPE,
        )
    except (UnknownCall, CallWithoutRecording) as exc:
        log.warning("Twilio transcription for %s ignored: %s", call_sid, type(exc).__name__)


def _without_words(line: PhoneLine, call_sid: str) -> None:
    """A recorded message Twilio found no words in: the caller is to be called back."""
    call = line.calls.get(call_sid)
    if call is None or call.state == CallState.MISSED:
        return  # no message at all: the missed call is noted as such
    found = line.services.store.complaints.find_by_dedup_key(call.complaint_key)
    note_empty(line, call_sid, reference=found.reference if found is not None else None)


def build_transcript_router(line: PhoneLine) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["calls"])

    @router.post(
        "/calls/{call_sid}/transcript",
        response_model=TranscriptAccepted,
        responses={401: {}, 403: {}, 404: {}, 409: {}, 413: {}, 422: {}, 503: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": TranscriptIn.model_json_schema()},
                },
            }
        },
    )
    async def attach_transcript(
        call_sid: str,
        request: Request,
        client: Annotated[ApiClient, Depends(require_scope("transcripts:write"))],
    ) -> dict[str, Any]:
        raw = await request.body()
        payload = await _parse(line, raw, call_sid, client)
        try:
            accepted = await run_in_threadpool(
                apply_transcript,
                line,
                call_sid,
                payload.text,
                language=payload.language,
                source=payload.engine or client.name,
                evidence=raw,
                evidence_type="application/json",
            )
        except UnknownCall:
            raise ApiError(404, "not_found", f"no call {call_sid}") from None
        except CallWithoutRecording:
            raise ApiError(
                409, "call_without_recording", f"call {call_sid} ended before any recording"
            ) from None
        # A call's complaint was submitted by Twilio, not by any key: only a
        # key that reads every complaint may learn which one it is.
        if not client.reads_all:
            accepted = accepted.model_copy(update={"complaint_id": None, "reference": None})
        return accepted.model_dump(mode="json")

    return router


async def _parse(line: PhoneLine, raw: bytes, call_sid: str, client: ApiClient) -> TranscriptIn:
    try:
        return TranscriptIn.model_validate_json(raw)
    except ValidationError as exc:
        code, message, field = describe_validation(list(exc.errors()))
        await run_in_threadpool(
            line.services.store.complaints.quarantine,
            channel=Channel.PHONE.value,
            data=raw,
            content_type="application/json",
            reason_code=code,
            reason=message,
            source_ids={"call_sid": call_sid, "api_client": client.name},
        )
        raise ApiError(422, code, message, field=field) from None
