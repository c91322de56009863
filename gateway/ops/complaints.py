"""The operator's view of one complaint: its deadlines, its state, its customer across channels.

browser --GET /ops/complaints/?reference=...--> 303 to the complaint's page ;
--GET /ops/complaints/{reference}--> the complaint (reference, channel,
received_at, deadlines, status), its customer key (``customer.key``, which
names no one) and the references of that customer's complaints of the 12
months before it, each a link to its own page.

Its acknowledgement: how it went out, or, when it was left to staff
(skipped, failed), a form --POST /ops/complaints/{reference}/acknowledged
(session + CSRF token; the means: a phone call, a registered letter, in
person; a note such as the letter's number)--> ``acks_by_hand.record_by_hand``
(``event.ack.sent``, the row ``sent``: the register's ``acknowledged_at``),
a line of the staff audit trail --303--> the page with a fixed notice.

Under ``/ops/`` and its roles, rendered like the others (autoescaped
templates, no script).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway.lib.http.auth import audit, require_csrf, require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.ops.acks_by_hand import MEANS, NOTE_LIMIT, left_to_staff, record_by_hand
from gateway.store.acks import AckRecord
from gateway.store.cases import CaseState, StatusRefused
from gateway.store.customers import CustomerView
from gateway.store.staff import StaffSession
from normalizer.contract import ComplaintMessage
from normalizer.reference import InvalidReference, parse_reference

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
# Notice codes the redirect may carry; each is ``complaint_notice_CODE`` in texts.json.
NOTICES = frozenset({"acknowledged", "not_left_to_staff"})


@dataclass(frozen=True)
class ComplaintView:
    message: ComplaintMessage
    case: CaseState
    customer: CustomerView
    ack: AckRecord | None = None
    ack_left_to_staff: bool = False


def complaint_view(services: Services, reference: str) -> ComplaintView | None:
    """What the page shows of the complaint ``reference`` (canonical), or None."""
    message = services.store.complaints.get_by_reference(reference)
    if message is None:
        return None
    case = services.store.cases.state(reference) or CaseState(message.id, reference)
    return ComplaintView(
        message,
        case,
        services.store.customers.of_complaint(message.id),
        services.store.acks.get(message.id),
        left_to_staff(services, message),
    )


def build_router(services: Services) -> APIRouter:
    """The complaint pages, under ``/ops`` like the operator page."""
    router = APIRouter(prefix="/ops", include_in_schema=False)
    zone = ZoneInfo(services.settings.timezone)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")

    @router.get("/complaints/")
    async def find(
        request: Request,
        staff: Annotated[StaffSession, Depends(require_staff)],
        reference: str = "",
    ) -> Response:
        try:
            canonical = parse_reference(reference[:64])
        except InvalidReference:
            return _pages.render(
                request, "complaint.html", status=404, staff=staff, view=None, local=local
            )
        return RedirectResponse(f"/ops/complaints/{canonical}", status_code=303)

    @router.get("/complaints/{reference}")
    async def show(
        request: Request, reference: str, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        try:
            canonical = parse_reference(reference[:64])
        except InvalidReference:
            canonical = None
        view = (
            None
            if canonical is None
            else await run_in_threadpool(complaint_view, services, canonical)
        )
        notice = request.query_params.get("notice", "")
        return _pages.render(
            request,
            "complaint.html",
            status=200 if view is not None else 404,
            staff=staff,
            view=view,
            local=local,
            means=MEANS,
            note_limit=NOTE_LIMIT,
            notice=notice if notice in NOTICES else None,
        )

    @router.post("/complaints/{reference}/acknowledged")
    async def acknowledged(
        request: Request,
        reference: str,
        staff: Annotated[StaffSession, Depends(require_csrf)],
        means: Annotated[str, Form(max_length=32)],
        note: Annotated[str, Form(max_length=NOTE_LIMIT)] = "",
    ) -> Response:
        try:
            canonical = parse_reference(reference[:64])
        except InvalidReference:
            return Response(status_code=404)
        message = await run_in_threadpool(services.store.complaints.get_by_reference, canonical)
        if message is None:
            return Response(status_code=404)
        if means not in MEANS:
            return Response(status_code=422)
        try:
            await run_in_threadpool(
                lambda: record_by_hand(
                    services, message, means=means, note=note, staff=staff.user.name
                )
            )
        except StatusRefused as exc:
            await audit(request, "ack_by_hand", canonical, f"refused: {exc}")
            return _back(canonical, "not_left_to_staff")
        await audit(
            request,
            "ack_by_hand",
            canonical,
            f"{means}{': ' + note.strip() if note.strip() else ''}",
            {"means": means},
        )
        return _back(canonical, "acknowledged")

    return router


def _back(reference: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/ops/complaints/{reference}?notice={notice}#ack", status_code=303)
