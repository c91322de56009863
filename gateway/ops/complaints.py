"""The operator's view of one complaint: its deadlines, its state, its customer across channels.

browser --GET /ops/complaints/?reference=...--> 303 to the complaint's page ;
--GET /ops/complaints/{reference}--> the complaint (reference, channel,
received_at, deadlines, status), its customer key (``customer.key``, which
names no one) and the references of that customer's complaints of the 12
months before it, each a link to its own page.

Read-only: no form posts, nothing audited; the page is under ``/ops/`` and its
roles, rendered like the others (autoescaped templates, no script).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway.lib.http.auth import require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.store.cases import CaseState
from gateway.store.customers import CustomerView
from gateway.store.staff import StaffSession
from normalizer.contract import ComplaintMessage
from normalizer.reference import InvalidReference, parse_reference

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))


@dataclass(frozen=True)
class ComplaintView:
    message: ComplaintMessage
    case: CaseState
    customer: CustomerView


def complaint_view(services: Services, reference: str) -> ComplaintView | None:
    """What the page shows of the complaint ``reference`` (canonical), or None."""
    message = services.store.complaints.get_by_reference(reference)
    if message is None:
        return None
    case = services.store.cases.state(reference) or CaseState(message.id, reference)
    return ComplaintView(message, case, services.store.customers.of_complaint(message.id))


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
        return _pages.render(
            request,
            "complaint.html",
            status=200 if view is not None else 404,
            staff=staff,
            view=view,
            local=local,
        )

    return router
