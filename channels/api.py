"""The partner API: ``POST /v1/complaints`` and ``GET /v1/complaints/{reference}``.

For systems that already hold a complaint as data: the call-centre CRM (an
agent types it in during a call), a Bank Al-Maghrib forwarding tool, a
script. The request body as received is the evidence. ``201`` means the
complaint is committed with its outbox row: it will reach the queue even if
the broker is down right now.

Dedup: with an ``Idempotency-Key`` header, the key (per API client) names the
complaint; reusing it with a different body is a ``409``. Without one, the
exact same body from the same client on the same local day is taken as a
retry of the first.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from channels.base import ChannelAdapter, lazy_replayer
from channels.intake import hand_off
from gateway.errors import ApiError, describe_validation
from gateway.services import Services
from gateway.store import IdempotencyConflict
from gateway.store.apikeys import ApiClient
from normalizer.contact import InvalidContact, build_customer
from normalizer.contract import Channel, ComplaintMessage, LanguageTag, Origin, Reference
from normalizer.deadlines import local_receipt_date
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.reference import InvalidReference, parse_reference

MAX_CLOCK_SKEW = timedelta(minutes=5)
_bearer = HTTPBearer(auto_error=False)


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=1000)


class ComplaintIn(BaseModel):
    """A complaint submitted by a partner system."""

    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=100_000, description="The complaint text")
    customer: CustomerIn
    subject: str | None = Field(default=None, max_length=500)
    channel: Channel = Field(
        default=Channel.API, description="How the customer reached us (phone for a CRM call)"
    )
    origin: Origin = Origin.CUSTOMER
    received_at: AwareDatetime | None = Field(
        default=None,
        description="When Cash Plus received it (starts the legal clock); default: now",
    )
    language: LanguageTag | None = Field(default=None, description="BCP 47, if known")
    product: str | None = Field(default=None, max_length=100)
    transaction_reference: str | None = Field(default=None, max_length=100)
    follow_up_of: Reference | None = None


class ComplaintAccepted(BaseModel):
    id: str
    reference: str
    received_at: datetime
    ack_due_at: datetime
    answer_due_at: datetime
    status_url: str


class ComplaintStatus(BaseModel):
    complaint: ComplaintMessage
    published: bool


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def require_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiClient:
    """The API client behind ``Authorization: Bearer KEY``, or 401."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "unauthorized", "missing API key (Authorization: Bearer KEY)", headers=challenge
        )
    services = _services(request)
    client = await run_in_threadpool(services.store.api_keys.authenticate, credentials.credentials)
    if client is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
    request.state.client = client
    return client


def parse_submission(raw: bytes) -> ComplaintIn:
    try:
        return ComplaintIn.model_validate_json(raw)
    except ValidationError as exc:
        code, message, field = describe_validation(list(exc.errors()))
        raise ApiError(422, code, message, field=field) from None


def build_draft(payload: ComplaintIn, now: datetime) -> ComplaintDraft:
    received_at = payload.received_at or now
    if received_at - now > MAX_CLOCK_SKEW:
        raise ApiError(422, "invalid_field", "received_at: is in the future", field="received_at")
    contact = payload.customer
    if not (contact.email or contact.phone or contact.postal_address):
        raise ApiError(
            422,
            "invalid_field",
            "customer: give at least one way to reach the customer (email, phone, postal_address)",
            field="customer",
        )
    try:
        customer = build_customer(**contact.model_dump(), strict=True)
    except InvalidContact as exc:
        raise ApiError(
            422, "invalid_field", f"customer.{exc.field}: {exc}", field=f"customer.{exc.field}"
        ) from None
    return ComplaintDraft(
        channel=payload.channel,
        origin=payload.origin,
        received_at=received_at.astimezone(UTC),
        body=payload.body,
        subject=payload.subject,
        customer=customer,
        declared_language=payload.language,
        product=payload.product,
        transaction_reference=payload.transaction_reference,
        follow_up_of=payload.follow_up_of,
    )


def dedup_key_for(
    client: ApiClient, raw: bytes, idempotency_key: str | None, received_at: datetime, zone: str
) -> str:
    if idempotency_key:
        return f"api:{client.id}:key:{idempotency_key}"
    digest = hashlib.sha256(raw).hexdigest()
    return f"api:{client.id}:body:{digest}:{local_receipt_date(received_at, zone).isoformat()}"


def _accepted(message: ComplaintMessage, request: Request) -> dict[str, Any]:
    return ComplaintAccepted(
        id=message.id,
        reference=message.reference,
        received_at=message.received_at,
        ack_due_at=message.ack_due_at,
        answer_due_at=message.answer_due_at,
        status_url=str(request.url_for("get_complaint", reference=message.reference)),
    ).model_dump(mode="json")


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["complaints"])

    @router.post(
        "/complaints",
        status_code=201,
        response_model=ComplaintAccepted,
        responses={
            200: {"description": "Repeat of an earlier request: the same complaint"},
            401: {},
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
        client: Annotated[ApiClient, Depends(require_client)],
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> dict[str, Any]:
        raw = await request.body()
        now = datetime.now(UTC)
        try:
            payload = parse_submission(raw)
            draft = build_draft(payload, now)
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
        raw_input = RawInput(
            channel=draft.channel,
            data=raw,
            content_type="application/json",
            received_at=draft.received_at,
            dedup_key=dedup_key_for(
                client, raw, idempotency_key, draft.received_at, services.settings.timezone
            ),
            source_ids={"api_client": client.name, "idempotency_key": idempotency_key},
            request_hash=hashlib.sha256(raw).hexdigest(),
        )
        try:
            result = await run_in_threadpool(hand_off, services, raw_input, draft)
        except IdempotencyConflict as exc:
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"Idempotency-Key already used for complaint {exc.existing.reference} "
                "with a different body",
            ) from None
        response.status_code = 201 if result.created else 200
        response.headers["Location"] = str(
            request.url_for("get_complaint", reference=result.message.reference)
        )
        return _accepted(result.message, request)

    @router.get(
        "/complaints/{reference}",
        name="get_complaint",
        response_model=ComplaintStatus,
        responses={401: {}, 404: {}, 422: {}},
    )
    async def get_complaint(
        reference: str, client: Annotated[ApiClient, Depends(require_client)]
    ) -> ComplaintStatus:
        try:
            canonical = parse_reference(reference)
        except InvalidReference as exc:
            raise ApiError(422, "invalid_reference", str(exc), field="reference") from None
        found = await run_in_threadpool(services.store.complaints.status, canonical)
        # Another partner's complaint is answered as one that does not exist.
        if found is None or not client.may_read(found[0].evidence.api_client):
            raise ApiError(404, "not_found", f"no complaint with reference {canonical}")
        message, published = found
        return ComplaintStatus(complaint=message, published=published)

    return router


ADAPTER = ChannelAdapter(
    name="api", routes=build_router, replay=lazy_replayer("gateway.ops.replayers", "replay_api")
)
