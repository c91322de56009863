"""``GET /v1/customers/{key}/complaints``: one customer's complaints, by their pseudonymous key.

case management --HTTPS--> **this route** (a ``complaints:read-all`` key)
-> ``services.store.customers`` (the complaints that took the key) and
``services.store.cases`` (where each stands) -> a page, newest first.

The key (``customer.key`` of any of their complaints) names no one: what a
downstream system holds of a customer is enough to ask, nothing more.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from gateway.lib.http.auth import require_scope
from gateway.lib.http.errors import ApiError
from gateway.lib.http.links import link_for
from gateway.lib.services import Services
from gateway.store.apikeys import READ_ALL, ApiClient
from gateway.store.cases import CaseState
from normalizer.contract import CUSTOMER_KEY_PATTERN, Channel, ComplaintMessage, Origin

MAX_PAGE = 100


class CustomerComplaintOut(BaseModel):
    reference: str
    channel: Channel
    origin: Origin
    received_at: datetime
    ack_due_at: datetime
    answer_due_at: datetime
    # As ``GET /v1/complaints/{reference}`` reports it.
    status: str
    answered_at: datetime | None
    closed_at: datetime | None
    answer_extended_to: datetime | None
    url: str


class CustomerComplaintsOut(BaseModel):
    customer_key: str
    complaints: list[CustomerComplaintOut]
    # The next page (``offset`` past this one), or null on the last.
    next: str | None


def add_customer_routes(router: APIRouter, services: Services) -> None:
    """Add the customer route to the partner API's router (prefix ``/v1``)."""

    @router.get(
        "/customers/{key}/complaints",
        name="customer_complaints",
        response_model=CustomerComplaintsOut,
        responses={401: {}, 403: {}, 404: {}, 422: {}},
    )
    async def customer_complaints(
        request: Request,
        key: str,
        _client: Annotated[ApiClient, Depends(require_scope(READ_ALL))],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> CustomerComplaintsOut:
        if not re.fullmatch(CUSTOMER_KEY_PATTERN, key):
            raise ApiError(422, "invalid_customer_key", "not a customer key", field="key")
        customers = services.store.customers
        if not await run_in_threadpool(customers.key_exists, key):
            raise ApiError(404, "not_found", "no complaint with this customer key")
        page = await run_in_threadpool(customers.complaints_of, key, limit=limit + 1, offset=offset)
        items = [await _item(request, services, message) for message in page[:limit]]
        following = None
        if len(page) > limit:
            path = link_for(request, services.settings, "customer_complaints", key=key)
            following = f"{path}?limit={limit}&offset={offset + limit}"
        return CustomerComplaintsOut(customer_key=key, complaints=items, next=following)


async def _item(
    request: Request, services: Services, message: ComplaintMessage
) -> CustomerComplaintOut:
    case = await run_in_threadpool(services.store.cases.state, message.reference)
    if case is None:
        case = CaseState(complaint_id=message.id, reference=message.reference)
    return CustomerComplaintOut(
        reference=message.reference,
        channel=message.channel,
        origin=message.origin,
        received_at=message.received_at,
        ack_due_at=message.ack_due_at,
        answer_due_at=message.answer_due_at,
        status=case.status,
        answered_at=case.answered_at,
        closed_at=case.closed_at,
        answer_extended_to=case.extended_until,
        url=link_for(request, services.settings, "get_complaint", reference=message.reference),
    )
