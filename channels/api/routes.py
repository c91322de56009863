"""The partner API's edge: ``POST /v1/complaints`` and ``GET /v1/complaints/{reference}``.

partner system --HTTPS--> **routes** (key, status codes) -> ``intake``
(validate, draft, ``RawInput``) -> ``staged.capture_submission`` -> 201 with
the reference and deadlines ... a normalizer runner
(``staged.normalize_api_captures``) -> ``channels.handoff``.

For systems that already hold a complaint as data: the call-centre CRM (an
agent types it in during a call), a Bank Al-Maghrib forwarding tool, a
script. The request body as received is the evidence. ``201`` means the body
is captured (fsynced, committed with its reference and deadlines): a runner
records the complaint, which then reaches the queue even if the broker is
down. Until then ``GET /v1/complaints/{reference}`` answers ``state:
captured`` (``quarantined`` if the runner could not record it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from channels.api.customers import add_customer_routes
from channels.api.intake import (
    ComplaintAccepted,
    call_draft,
    linked_call,
    read_submission,
    submission_input,
)
from channels.api.staged import capture_submission
from gateway.lib.capture_queue import CaptureQueue
from gateway.lib.http.auth import missing_scope, require_client, require_scope
from gateway.lib.http.errors import ApiError
from gateway.lib.http.links import link_for
from gateway.lib.services import Services
from gateway.store.apikeys import STATUS, STATUS_WRITE, ApiClient
from gateway.store.captures import DONE, Captured
from normalizer.contract import Channel, ComplaintMessage
from normalizer.draft import RawInput
from normalizer.reference import InvalidReference, parse_reference


class StatusEntryOut(BaseModel):
    status: str
    at: datetime
    note: str | None
    answer_due_at: datetime | None
    reason: str | None
    source: str


class ComplaintStatus(BaseModel):
    # captured: accepted (201), not recorded as a complaint yet; normalized: the
    # complaint is recorded (``complaint``); quarantined: kept for an operator.
    state: Literal["captured", "normalized", "quarantined"] = "normalized"
    # None until a runner has recorded the complaint.
    complaint: ComplaintMessage | None = None
    published: bool = False
    # What case handling reported (``POST /v1/complaints/{reference}/status``).
    status: str = "received"
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    answer_extended_to: datetime | None = None
    status_history: list[StatusEntryOut] = []


def _accepted(captured: Captured, status_url: str, zone: str) -> dict[str, Any]:
    # The deadlines as the complaint states them: end of a local day, whether the
    # capture is fresh or read back from the store (which keeps them in UTC).
    local = ZoneInfo(zone)
    return ComplaintAccepted(
        id=captured.id,
        reference=captured.reference,
        received_at=captured.received_at.astimezone(UTC),
        ack_due_at=captured.ack_due_at.astimezone(local),
        answer_due_at=captured.answer_due_at.astimezone(local),
        status_url=status_url,
    ).model_dump(mode="json")


def _pending_capture(services: Services, reference: str, client: ApiClient) -> str | None:
    """The state of the capture given ``reference`` (captured, quarantined, done), if any.

    A pending capture is shown only to its own partner; once done its identifiers
    are emptied, and the complaint answers who may read it.
    """
    captured = services.store.captures.by_reference(reference)
    if captured is None:
        return None
    state = services.store.captures.state_of(captured.id)
    if state is None:
        return None
    if state[0] == DONE:
        return DONE
    return state[0] if client.may_read(captured.source_ids.get("api_client")) else None


def _reuses(first: Captured, raw_input: RawInput) -> bool:
    """Whether a repeat's key names another body's complaint (not a retry of this one)."""
    if first.request_hash is None:
        # Kept without a hash: an API complaint from before hashes (a retry, as
        # before), or the call's own recorded message (the call has its complaint).
        return raw_input.dedup_key.startswith("twilio:call:")
    return first.request_hash != raw_input.request_hash


def _reused(captured: Captured, raw_input: RawInput, call_sid: str | None) -> ApiError:
    """The 409 of a key (or a call) that already named another body's complaint."""
    if call_sid is not None and raw_input.dedup_key.startswith("twilio:call:"):
        # Another body for this call, or the caller's own recorded message.
        return call_has_complaint(call_sid, captured.reference)
    return ApiError(
        409,
        "idempotency_key_reused",
        f"Idempotency-Key already used for complaint {captured.reference} with a different body",
    )


def call_has_complaint(call_sid: str, reference: str) -> ApiError:
    return ApiError(
        409,
        "call_has_complaint",
        f"call {call_sid} already made complaint {reference}; "
        "send what the customer adds with follow_up_of",
    )


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["complaints"])
    settings = services.settings
    max_backdate = timedelta(days=settings.max_backdate_days)
    # Captures committed a batch at a time by one writer thread (no thread per request).
    writer = CaptureQueue(services.store.captures)

    @router.post(
        "/complaints",
        status_code=201,
        response_model=ComplaintAccepted,
        responses={
            200: {"description": "Repeat of an earlier request: the same complaint"},
            401: {},
            403: {},
            409: {},
            413: {},
            422: {},
            503: {},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ComplaintIn"}}
                },
            }
        },
    )
    async def create_complaint(
        request: Request,
        response: Response,
        client: Annotated[ApiClient, Depends(require_scope("complaints:write"))],
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> dict[str, Any]:
        raw = await request.body()
        now = datetime.now(UTC)
        call_sid: str | None = None
        try:
            draft = read_submission(raw, now, client, max_backdate)
            call_sid, dated = linked_call(raw)
            if call_sid is not None:
                call = await run_in_threadpool(services.store.calls().get, call_sid)
                draft = call_draft(draft, call.started_at if call else None, dated)
        except ApiError as exc:
            await run_in_threadpool(
                services.store.complaints.quarantine,
                channel=Channel.API.value,
                data=raw,
                content_type=request.headers.get("content-type", "application/octet-stream"),
                reason_code=exc.code,
                reason=exc.message,
                source_ids={"api_client": client.name, "idempotency_key": idempotency_key},
            )
            raise
        raw_input = submission_input(
            client, raw, idempotency_key, draft, services.settings.timezone, call_sid=call_sid
        )
        # Durable before the answer: the body, its receipt, its reference. A runner
        # (``staged.normalize_api_captures``) records the complaint under that reference.
        captured = await capture_submission(writer, raw_input, now)
        if not captured.created and _reuses(captured, raw_input):
            raise _reused(captured, raw_input, call_sid)
        response.status_code = 201 if captured.created else 200
        status_url = link_for(request, settings, "get_complaint", reference=captured.reference)
        response.headers["Location"] = status_url
        return _accepted(captured, status_url, settings.timezone)

    @router.get(
        "/complaints/{reference}",
        name="get_complaint",
        response_model=ComplaintStatus,
        responses={401: {}, 403: {}, 404: {}, 422: {}},
    )
    async def get_complaint(
        reference: str, client: Annotated[ApiClient, Depends(require_client)]
    ) -> ComplaintStatus:
        if not (client.has(STATUS) or client.reads_all):
            raise missing_scope(STATUS)
        try:
            canonical = parse_reference(reference)
        except InvalidReference as exc:
            raise ApiError(422, "invalid_reference", str(exc), field="reference") from None
        found = await run_in_threadpool(services.store.complaints.status, canonical)
        if found is None:
            pending = await run_in_threadpool(_pending_capture, services, canonical, client)
            if pending == "captured":
                return ComplaintStatus(state="captured")
            if pending == "quarantined":
                return ComplaintStatus(state="quarantined")
            if pending == DONE:  # normalized since the first look
                found = await run_in_threadpool(services.store.complaints.status, canonical)
            if found is None:
                raise ApiError(404, "not_found", f"no complaint with reference {canonical}")
        # Another partner's complaint is answered as one that does not exist.
        if not client.may_read(found[0].evidence.api_client):
            raise ApiError(404, "not_found", f"no complaint with reference {canonical}")
        message, published = found
        if not client.reads_all:
            # The customer's other references (any channel, any partner) are for
            # Cash Plus: a partner who typed someone's phone must not list them.
            customer = message.customer.model_copy(update={"related": []})
            message = message.model_copy(update={"customer": customer})
        case = await run_in_threadpool(services.store.cases.state, canonical)
        # Case management's notes are for Cash Plus's staff, not for the submitting partner.
        shows_notes = client.reads_all or client.has(STATUS_WRITE)
        if case is None:
            return ComplaintStatus(state="normalized", complaint=message, published=published)
        return ComplaintStatus(
            state="normalized",
            complaint=message,
            published=published,
            status=case.status,
            answered_at=case.answered_at,
            closed_at=case.closed_at,
            answer_extended_to=case.extended_until,
            status_history=[
                StatusEntryOut(
                    status=entry.status,
                    at=entry.at,
                    note=entry.note if shows_notes else None,
                    answer_due_at=entry.answer_due_at,
                    reason=entry.reason,
                    source=entry.source,
                )
                for entry in case.history
            ],
        )

    add_customer_routes(router, services)
    return router
