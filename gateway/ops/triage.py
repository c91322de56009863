"""The staff page "to sort": inputs the triage found not to be complaints, for a person to decide.

browser --GET /ops/triage/--> the list (oldest receipt first: the legal clock
runs from it) ; "a complaint" --POST (session + CSRF token, operator or
admin)--> ``TriageStore.make_complaint`` (reference and deadlines of the
original receipt; published and acknowledged like any complaint) ; "not a
complaint" --POST--> ``TriageStore.confirm``. Each decision is a line of
the staff audit trail (who, when, from where) and the item keeps who
decided and when. --303--> ``/ops/triage/?notice=CODE&entry=ID``, worded
from the member's own audit entry, as on ``/ops/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway.lib.http.auth import audit, require_csrf, require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.ops.notices import back, notice
from gateway.store.staff import StaffSession
from gateway.store.tables import CONFIRMED, TO_SORT
from gateway.store.triage import TriageConflict

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
NOTICES = frozenset({"made_complaint", "confirmed", "not_found", "conflict"})
LIST_LIMIT = 200
DECIDED_LIMIT = 20


def _back(notice: str, entry: int | None = None) -> RedirectResponse:
    return back("/ops/triage/", notice, entry)


def _notice(
    request: Request, texts: dict[str, str], staff: StaffSession, services: Services
) -> str | None:
    """The redirect's notice, its reference read from the member's own audit entry."""
    return notice(
        request,
        texts,
        staff,
        services,
        prefix="triage_notice_",
        codes=NOTICES,
        blanks=["reference"],
    )


def build_router(services: Services) -> APIRouter:
    """The page's routes, beside the operator page's (``/ops/triage/``)."""
    router = APIRouter(prefix="/ops", include_in_schema=False)
    zone = ZoneInfo(services.settings.timezone)
    triage = services.store.triage

    @router.get("/triage/")
    async def to_sort(
        request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        texts = _pages.texts_for(request)
        items = await run_in_threadpool(triage.listing, TO_SORT, LIST_LIMIT)
        confirmed = await run_in_threadpool(triage.listing, CONFIRMED, DECIDED_LIMIT)
        counts = await run_in_threadpool(triage.counts)
        notice = await run_in_threadpool(_notice, request, texts, staff, services)
        return _pages.render(
            request,
            "triage.html",
            staff=staff,
            items=items,
            confirmed=confirmed,
            counts=counts,
            notice=notice,
            local=lambda moment: moment.astimezone(zone).strftime("%d/%m/%Y %H:%M"),
        )

    @router.post("/triage/{item_id}/complaint")
    async def make_complaint(
        request: Request, item_id: str, staff: Annotated[StaffSession, Depends(require_csrf)]
    ) -> Response:
        message = await run_in_threadpool(triage.make_complaint, item_id, staff.user.name)
        if message is None:
            await audit(request, "triage_complaint", item_id[:64], "not found")
            return _back("not_found")
        entry = await audit(
            request,
            "triage_complaint",
            item_id,
            f"made complaint {message.reference}",
            {"reference": message.reference},
        )
        return _back("made_complaint", entry)

    @router.post("/triage/{item_id}/confirm")
    async def confirm(
        request: Request, item_id: str, staff: Annotated[StaffSession, Depends(require_csrf)]
    ) -> Response:
        try:
            item = await run_in_threadpool(triage.confirm, item_id, staff.user.name)
        except TriageConflict as exc:
            entry = await audit(request, "triage_confirm", item_id, f"refused: {exc}")
            return _back("conflict", entry)
        if item is None:
            await audit(request, "triage_confirm", item_id[:64], "not found")
            return _back("not_found")
        entry = await audit(
            request,
            "triage_confirm",
            item_id,
            f"confirmed {item.kind} ({item.reference})",
            {"reference": item.reference},
        )
        return _back("confirmed", entry)

    return router
