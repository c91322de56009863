"""Twilio's status callbacks of our acknowledgements: what became of each SMS or WhatsApp message.

TwilioSender (``StatusCallback`` on every message) -> Twilio -> **POST
/twilio/acks/status** (signed: ``verified_twilio_request``, the phone
line's check; anything else 403) -> ``Store.deliveries.report`` (the
delivery's state, forward only; for a final state the callback kept as
evidence and ``ack.delivered`` / ``ack.undelivered`` published) -> an
undelivered acknowledgement is left to the workers' poll, which sends it by
the next method (``Acknowledger.redeliver``).

Idempotent: a repeated callback, or one that comes late (``sent`` after
``delivered``), changes nothing and is answered the same ``204``. A
callback for a message that is not one of our acknowledgements (an answer
the line sent) is answered ``204`` too: Twilio has nothing to retry.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool

from channels.twilio.signature import FORM_TYPE, TwilioRequest, verified_twilio_request
from gateway.acks.senders.sms import STATUS_CALLBACK_PATH
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store.deliveries import DeliveryNotice, DeliveryOutcome
from normalizer.contract import Channel
from normalizer.draft import RawInput

log = logging.getLogger("intake.acks")

Verified = Annotated[TwilioRequest, Depends(verified_twilio_request)]


def report_status(services: Services, request: TwilioRequest) -> DeliveryOutcome | None:
    """Apply one status callback; ``None`` when it names no message or no status."""
    sid = request.get("MessageSid") or request.get("SmsSid")
    state = (request.get("MessageStatus") or request.get("SmsStatus")).lower()
    if not sid or not state:
        log.warning("status callback without MessageSid or MessageStatus: ignored")
        return None
    error = request.get("ErrorCode") or None
    raw = RawInput(
        channel=Channel.SMS,  # the store files it under the complaint's own channel
        data=request.body,
        content_type=FORM_TYPE,
        received_at=request.received_at,
        dedup_key=f"twilio:status:{sid}:{state}",
        source_ids={"message_sid": sid},
    )
    notice = DeliveryNotice(state=state, error=error, provider_id=sid, source="twilio")
    outcome = services.store.deliveries.report(notice, raw)
    if not outcome.found:
        log.info("status callback for %s, not an acknowledgement: ignored", sid)
    elif outcome.changed:
        with complaint_context(outcome.complaint_id or ""):
            log.info(
                "acknowledgement %s by %s: %s%s%s",
                sid,
                outcome.method,
                state,
                f" (error {error})" if error else "",
                "; the next method is tried" if outcome.resend else "",
            )
    return outcome


def build_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["acknowledgements"])

    @router.post(
        STATUS_CALLBACK_PATH,
        status_code=204,
        response_class=Response,
        responses={204: {"description": "recorded"}, 403: {"description": "not signed by Twilio"}},
    )
    async def message_status(request: Verified) -> Response:
        """Twilio's status callback of an acknowledgement (queued, sent, delivered...)."""
        await run_in_threadpool(report_status, services, request)
        return Response(status_code=204)

    return router
