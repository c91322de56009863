"""One partner submission: JSON bytes -> the complaint draft and its ``RawInput``.

``routes`` (``POST /v1/complaints``) and ``replay`` (a quarantined body)
both call ``read_submission`` then ``submission_input``, then
``channels.handoff.hand_off``: the edge and its replay build the same input.

Dedup: with an ``Idempotency-Key`` header, the key (per API client) names the
complaint; reusing it with a different body is a ``409``. Without one, the
exact same body from the same client on the same local day is taken as a
retry of the first.

A complaint an agent types during a call names the call (``evidence.call_sid``,
the CallSid Twilio gives the agent's side): one call makes one complaint.
Its dedup key is then the call's own (``twilio:call:<CallSid>``), whoever
comes first: the same body again is a retry (200); another body for the same
call is a ``409`` naming the call's complaint (send more with
``follow_up_of``, which is not deduplicated by the call); a call whose
caller already left a recorded message answers ``409`` the same way.
Without ``received_at``, the complaint was received when the call started
(the legal clock). A CallSid the line never
saw is refused (422 ``unknown_call``). ``channel`` is then ``phone``.

Who may say what (``check_scopes``): the fields that move the legal clock or
say who sent the complaint need the key's scope: ``received_at`` in the
past ``received-at:backdate`` (and even then at most
``INTAKE_MAX_BACKDATE_DAYS``), ``origin`` other than ``customer`` and
``channel`` other than ``api`` or ``phone`` (a CRM typing in a call)
``origin:set``. Refused as any invalid field: 422, quarantined.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gateway.lib.http.errors import ApiError, describe_validation
from gateway.store.apikeys import ApiClient
from gateway.store.calls import call_complaint_key
from normalizer.contact import InvalidContact, build_customer
from normalizer.contract import Channel, LanguageTag, Origin, Reference
from normalizer.deadlines import local_receipt_date
from normalizer.draft import ComplaintDraft, RawInput

MAX_CLOCK_SKEW = timedelta(minutes=5)
BACKDATE = "received-at:backdate"
ORIGIN_SET = "origin:set"
# Channels any key may name: its own, and a call typed in by a call-centre agent.
OPEN_CHANNELS = frozenset({Channel.API, Channel.PHONE})


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=1000)


CALL_SID_PATTERN = r"^CA[0-9a-f]{32}$"


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_sid: str | None = Field(
        default=None,
        pattern=CALL_SID_PATTERN,
        description="CallSid of the call the agent is on: the call's one complaint",
    )


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
    evidence: EvidenceIn | None = None


class ComplaintAccepted(BaseModel):
    id: str
    reference: str
    received_at: datetime
    ack_due_at: datetime
    answer_due_at: datetime
    status_url: str


def parse_submission(raw: bytes) -> ComplaintIn:
    try:
        return ComplaintIn.model_validate_json(raw)
    except ValidationError as exc:
        code, message, field = describe_validation(list(exc.errors()))
        raise ApiError(422, code, message, field=field) from None


def _refused(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", f"{field}: {message}", field=field)


def check_scopes(
    payload: ComplaintIn, client: ApiClient, now: datetime, max_backdate: timedelta
) -> None:
    """The fields only some keys may set (``ApiError`` 422 naming the field and the scope)."""
    if payload.origin != Origin.CUSTOMER and not client.has(ORIGIN_SET):
        raise _refused("origin", f"only a key with the scope {ORIGIN_SET} may set it")
    if payload.channel not in OPEN_CHANNELS and not client.has(ORIGIN_SET):
        raise _refused(
            "channel",
            f"{payload.channel.value}: only a key with the scope {ORIGIN_SET} may name a channel "
            "other than api or phone",
        )
    received_at = payload.received_at
    if received_at is None or now - received_at <= MAX_CLOCK_SKEW:
        return
    if not client.has(BACKDATE):
        raise _refused(
            "received_at", f"is in the past; only a key with the scope {BACKDATE} may backdate"
        )
    if now - received_at > max_backdate:
        raise _refused("received_at", f"is more than {max_backdate.days} days in the past")


def build_draft(payload: ComplaintIn, now: datetime) -> ComplaintDraft:
    received_at = payload.received_at or now
    if received_at - now > MAX_CLOCK_SKEW:
        raise _refused("received_at", "is in the future")
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
    linked_call = payload.evidence is not None and payload.evidence.call_sid is not None
    return ComplaintDraft(
        channel=Channel.PHONE if linked_call else payload.channel,
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


def linked_call(raw: bytes) -> tuple[str | None, bool]:
    """``(evidence.call_sid, received_at given?)`` of a body ``read_submission`` accepted."""
    payload = parse_submission(raw)
    call_sid = payload.evidence.call_sid if payload.evidence is not None else None
    return call_sid, payload.received_at is not None


def call_draft(draft: ComplaintDraft, started_at: datetime | None, dated: bool) -> ComplaintDraft:
    """The draft of a call's typed complaint: received when the call started, unless dated."""
    if started_at is None:
        raise ApiError(
            422,
            "unknown_call",
            "evidence.call_sid: no such call on the line",
            field="evidence.call_sid",
        )
    return draft if dated else replace(draft, received_at=started_at)


def dedup_key_for(
    client: ApiClient,
    raw: bytes,
    idempotency_key: str | None,
    received_at: datetime,
    zone: str,
    *,
    call_sid: str | None = None,
) -> str:
    if call_sid:
        return call_complaint_key(call_sid)  # one call, one complaint
    if idempotency_key:
        return f"api:{client.id}:key:{idempotency_key}"
    digest = hashlib.sha256(raw).hexdigest()
    return f"api:{client.id}:body:{digest}:{local_receipt_date(received_at, zone).isoformat()}"


def read_submission(
    raw: bytes, now: datetime, client: ApiClient, max_backdate: timedelta
) -> ComplaintDraft:
    """The draft of a body ``client`` submitted; ``ApiError`` (422) names what is wrong."""
    payload = parse_submission(raw)
    check_scopes(payload, client, now, max_backdate)
    return build_draft(payload, now)


def submission_input(
    client: ApiClient,
    raw: bytes,
    idempotency_key: str | None,
    draft: ComplaintDraft,
    zone: str,
    *,
    call_sid: str | None = None,
    **source_ids: str,
) -> RawInput:
    """The evidence of one submission, with its dedup key and request hash."""
    # A follow-up typed on the same call is a complaint of its own, still naming the call.
    by_call = call_sid if draft.follow_up_of is None else None
    key = dedup_key_for(client, raw, idempotency_key, draft.received_at, zone, call_sid=by_call)
    if call_sid:
        source_ids = {**source_ids, "call_sid": call_sid}
    return RawInput(
        channel=draft.channel,
        data=raw,
        content_type="application/json",
        received_at=draft.received_at,
        dedup_key=key,
        source_ids={"api_client": client.name, "idempotency_key": idempotency_key, **source_ids},
        request_hash=hashlib.sha256(raw).hexdigest(),
    )
