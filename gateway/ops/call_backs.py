"""The staff page "calls to return": callers the phone line left without an answer.

browser --GET /ops/callbacks/--> the calls to return (oldest call first: that
caller has waited longest), the number shown left-to-right, then the calls
recently returned ; "called back" --POST (session + CSRF token, operator or
admin), an optional outcome note--> ``CallBacks.mark_done`` (who, when, the
note), a line of the staff audit trail (the number masked there: the trail
outlives an erasure) --303--> ``/ops/callbacks/?notice=CODE&entry=ID``,
worded from the member's own audit entry, as on ``/ops/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from gateway.lib.http.auth import audit, require_csrf, require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.logs import mask_personal_data
from gateway.lib.services import Services
from gateway.ops.notices import back, notice
from gateway.store.call_backs import OUTCOME_LIMIT
from gateway.store.staff import StaffSession

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
NOTICES = frozenset({"done", "already_done", "not_found"})
LIST_LIMIT = 200
DONE_LIMIT = 20
ACTION = "call_back_done"


def _back(notice: str, entry: int | None = None) -> RedirectResponse:
    return back("/ops/callbacks/", notice, entry)


def _notice(
    request: Request, texts: dict[str, str], staff: StaffSession, services: Services
) -> str | None:
    """The redirect's notice, the (masked) number read from the member's own audit entry."""
    return notice(
        request,
        texts,
        staff,
        services,
        prefix="callbacks_notice_",
        codes=NOTICES,
        blanks=["caller"],
        action=ACTION,
    )


def build_router(services: Services) -> APIRouter:
    """The page's routes, beside the operator page's (``/ops/callbacks/``)."""
    router = APIRouter(prefix="/ops", include_in_schema=False)
    zone = ZoneInfo(services.settings.timezone)
    call_backs = services.store.call_backs

    @router.get("/callbacks/")
    async def to_return(
        request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        texts = _pages.texts_for(request)
        items = await run_in_threadpool(lambda: call_backs.listing(limit=LIST_LIMIT))
        done = await run_in_threadpool(lambda: call_backs.listing(done=True, limit=DONE_LIMIT))
        counts = await run_in_threadpool(call_backs.counts)
        notice = await run_in_threadpool(_notice, request, texts, staff, services)
        return _pages.render(
            request,
            "callbacks.html",
            staff=staff,
            items=items,
            done=done,
            counts=counts,
            notice=notice,
            outcome_limit=OUTCOME_LIMIT,
            local=lambda moment: moment.astimezone(zone).strftime("%d/%m/%Y %H:%M"),
        )

    @router.post("/callbacks/{item_id}/done")
    async def called_back(
        request: Request,
        item_id: str,
        staff: Annotated[StaffSession, Depends(require_csrf)],
        outcome: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        found = await run_in_threadpool(call_backs.mark_done, item_id, staff.user.name, outcome)
        if found is None:
            await audit(request, ACTION, item_id[:64], "not found")
            return _back("not_found")
        item, changed = found
        caller = mask_personal_data(item.caller or "")
        if not changed:
            entry = await audit(
                request,
                ACTION,
                item.id,
                f"already called back by {item.done_by}",
                {"caller": caller},
            )
            return _back("already_done", entry)
        detail = f"called back {caller} ({item.reason})" + (" with a note" if item.outcome else "")
        entry = await audit(request, ACTION, item.id, detail, {"caller": caller})
        return _back("done", entry)

    return router
