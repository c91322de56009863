"""The partner API's edge: ``POST /v1/complaints`` and ``GET /v1/complaints/{reference}``.

partner system --HTTPS--> **routes** (key, status codes) -> ``intake``
(validate, draft, ``RawInput``) -> ``channels.handoff`` -> 201 with the
reference and deadlines.

For systems that already hold a complaint as data: the call-centre CRM (an
agent types it in during a call), a Bank Al-Maghrib forwarding tool, a
script. The request body as received is the evidence. ``201`` means the
complaint is committed with its outbox row: it will reach the queue even if
the broker is down right now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

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
from channels.handoff import hand_off
from gateway.lib.http.auth import missing_scope, require_client, require_scope
from gateway.lib.http.errors import ApiError
from gateway.lib.http.links import link_for
from gateway.lib.services import Services
from gateway.store import IdempotencyConflict
from gateway.store.apikeys import STATUS, STATUS_WRITE, ApiClient
from normalizer.contract import Channel, ComplaintMessage
from normalizer.reference import InvalidReference, parse_reference


class StatusEntryOut(BaseModel):
    status: str
    at: datetime
    note: str | None
    answer_due_at: datetime | None
    reason: str | None
    source: str


class ComplaintStatus(BaseModel):
    complaint: ComplaintMessage
    published: bool
    # What case handling reported (``POST /v1/complaints/{reference}/status``).
    status: str = "received"
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    answer_extended_to: datetime | None = None
    status_history: list[StatusEntryOut] = []


def _accepted(message: ComplaintMessage, status_url: str) -> dict[str, Any]:
    return ComplaintAccepted(
        id=message.id,
        reference=message.reference,
        received_at=message.received_at,
        ack_due_at=message.ack_due_at,
        answer_due_at=message.answer_due_at,
        status_url=status_url,
    ).model_dump(mode="json")


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
        try:
            result = await run_in_threadpool(hand_off, services, raw_input, draft)
        except IdempotencyConflict as exc:
            if call_sid is not None and raw_input.dedup_key.startswith("twilio:call:"):
                raise call_has_complaint(call_sid, exc.existing.reference) from None
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"Idempotency-Key already used for complaint {exc.existing.reference} "
                "with a different body",
            ) from None
        if call_sid is not None:
            if not result.created and result.message.evidence.api_client is None:
                # The caller's own recorded message is the call's complaint.
                raise call_has_complaint(call_sid, result.message.reference)
            await run_in_threadpool(services.store.calls().link_typed, call_sid)
        response.status_code = 201 if result.created else 200
        status_url = link_for(
            request, settings, "get_complaint", reference=result.message.reference
        )
        response.headers["Location"] = status_url
        return _accepted(result.message, status_url)

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
        # Another partner's complaint is answered as one that does not exist.
        if found is None or not client.may_read(found[0].evidence.api_client):
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
            return ComplaintStatus(complaint=message, published=published)
        return ComplaintStatus(
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
