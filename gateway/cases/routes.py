"""``POST /v1/complaints/{reference}/status``: case management reports what became of a complaint.

partner (case management) --HTTPS, key with ``status:write``--> **route**
(body checked strictly) -> ``reports.record`` -> 201 (recorded), 200 (the
same report again), 404 (unknown reference), 409 (a transition the
complaint cannot take; ``not_recorded_yet`` with ``Retry-After: 1`` for a
reference captured and not yet recorded by a runner, ``quarantined`` for
one the runner could not record), 422 (a bad body, ``at`` in the future or before the
complaint was received). The body is the ``data`` of a
``ma.cashplus.complaint.status.v1`` message, without ``reference``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.cases.reports import NOT_RECORDED_YET, record
from gateway.lib.http.auth import require_scope
from gateway.lib.http.errors import ApiError
from gateway.lib.services import Services
from gateway.store.apikeys import STATUS_WRITE, ApiClient
from gateway.store.cases import CaseState, StatusRefused
from normalizer.reference import InvalidReference, parse_reference
from normalizer.status import StatusReportIn


class StatusReportBody(StatusReportIn):
    # Our own API refuses what it does not know (a typo'd field is a mistake, not a minor).
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusRecorded(BaseModel):
    reference: str
    status: str
    at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    answer_extended_to: datetime | None


def _recorded(state: CaseState) -> StatusRecorded:
    return StatusRecorded(
        reference=state.reference,
        status=state.status,
        at=state.at,
        answered_at=state.answered_at,
        closed_at=state.closed_at,
        answer_extended_to=state.extended_until,
    )


def _body(raw: bytes) -> StatusReportBody:
    try:
        return StatusReportBody.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(422, "invalid_field", first["msg"], field=field) from None


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["complaints"])

    @router.post(
        "/complaints/{reference}/status",
        status_code=201,
        response_model=StatusRecorded,
        responses={
            200: {"description": "The same report again"},
            401: {},
            403: {},
            404: {},
            409: {},
            422: {},
            503: {},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                # Inline: the model has no nested models, so no $defs to place.
                "content": {"application/json": {"schema": StatusReportBody.model_json_schema()}},
            }
        },
    )
    async def report_status(
        reference: str,
        request: Request,
        response: Response,
        client: Annotated[ApiClient, Depends(require_scope(STATUS_WRITE))],
    ) -> StatusRecorded:
        try:
            canonical = parse_reference(reference)
        except InvalidReference as exc:
            raise ApiError(422, "invalid_reference", str(exc), field="reference") from None
        body = _body(await request.body())
        try:
            outcome = await run_in_threadpool(
                record, services, canonical, body, source="api", actor=client.name
            )
        except StatusRefused as exc:
            # Captured, not a complaint yet: a runner records it within moments.
            retry = {"Retry-After": "1"} if exc.code == NOT_RECORDED_YET else None
            raise ApiError(
                exc.http_status, exc.code, str(exc), field=exc.field, headers=retry
            ) from None
        response.status_code = 201 if outcome.created else 200
        return _recorded(outcome.state)

    return router
