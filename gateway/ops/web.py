"""The operator page: ``/ops/`` behind the staff login, French or Arabic.

browser --GET /ops/--> **dashboard** (plots, tiles, lists, the latest staff
actions) ; replay buttons --POST (session + CSRF token, operator or admin
role)--> replay, written to the staff audit trail --303--> ``/ops/?notice=CODE&entry=ID``.

The redirect carries only a notice code (one of ``NOTICES``, worded by
``texts.json``) and the id of the audit entry of that replay; what the
notice says beyond its fixed words (a reference, a count, why it failed)
is read back from that entry, and only if the member viewing the page made
it. An unknown code, or an entry not theirs, shows nothing: a crafted link
cannot put its own text on the page.

Plain forms and server-rendered SVG: the page works without JavaScript and
under a CSP that forbids scripts. Replays run in a worker thread (database,
blob store, broker); our failures answer 503 like the rest of the gateway.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from gateway.lib.http.auth import audit, require_csrf, require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.ops.dashboard import build_dashboard, human_age
from gateway.ops.notices import back, notice
from gateway.ops.quarantine import replay
from gateway.store.quarantine import ReplayResult
from gateway.store.staff import StaffSession
from router.broker import BrokerUnavailable
from router.deadletters import DeadLetters

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
_DETAIL_LIMIT = 300
# Notice codes the redirect may carry; each is ``notice_CODE`` in texts.json.
NOTICES = frozenset({"replayed", "refused", "not_found", "dead_replayed", "dead_failed"})
# Staff actions listed on the page.
AUDIT_LIMIT = 20


def _back(anchor: str, notice: str, entry: int | None = None) -> RedirectResponse:
    return back("/ops/", notice, entry, anchor)


def _notice(
    request: Request, texts: dict[str, str], staff: StaffSession, services: Services
) -> str | None:
    """The sentence for the notice code of the redirect, worded from the member's own entry."""
    return notice(
        request,
        texts,
        staff,
        services,
        prefix="notice_",
        codes=NOTICES,
        blanks=["detail", "reference", "count"],
    )


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/ops", include_in_schema=False)
    zone = ZoneInfo(services.settings.timezone)

    @router.get("/")
    async def dashboard(
        request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        texts = _pages.texts_for(request)
        board = await run_in_threadpool(build_dashboard, services, texts)
        notice = await run_in_threadpool(_notice, request, texts, staff, services)
        actions = await run_in_threadpool(services.store.staff_audit.latest, AUDIT_LIMIT)
        return _pages.render(
            request,
            "ops.html",
            staff=staff,
            board=board,
            notice=notice,
            actions=actions,
            age=human_age,
            local=lambda moment: moment.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S"),
        )

    @router.post("/quarantine/{item_id}/replay")
    async def replay_quarantined(
        request: Request, item_id: str, _staff: Annotated[StaffSession, Depends(require_csrf)]
    ) -> Response:
        item = await run_in_threadpool(services.store.quarantine.get, item_id)
        if item is None:
            await audit(request, "quarantine_reprocess", item_id, "not found")
            return _back("quarantine", "not_found")
        result: ReplayResult = await run_in_threadpool(replay, services, item)
        detail = result.detail[:_DETAIL_LIMIT]
        if not result.ok:
            entry = await audit(
                request,
                "quarantine_reprocess",
                item_id,
                f"still refused: {detail}",
                {"detail": detail},
            )
            return _back("quarantine", "refused", entry)
        entry = await audit(
            request,
            "quarantine_reprocess",
            item_id,
            f"{detail} {result.reference or ''}".strip(),
            {"detail": detail, "reference": result.reference or ""},
        )
        return _back("quarantine", "replayed", entry)

    @router.post("/dead-letters/replay")
    async def replay_dead_letters(
        request: Request,
        _staff: Annotated[StaffSession, Depends(require_csrf)],
        message_id: Annotated[str, Form(max_length=255)] = "",
        queue: Annotated[str, Form(max_length=255)] = "",
    ) -> Response:
        wanted = None if message_id == "*" else {message_id}
        target = f"{queue or '-'}:{message_id}"
        replay_letters = partial(DeadLetters(services.settings).replay, queue=queue or None)
        try:
            outcome = await run_in_threadpool(replay_letters, wanted)
        except BrokerUnavailable as exc:
            failure = str(exc)[:_DETAIL_LIMIT]
        else:
            failure = "; ".join(outcome.failed.values())[:_DETAIL_LIMIT]
            if not outcome.failed:
                count = len(outcome.replayed)
                entry = await audit(
                    request,
                    "dead_letter_requeue",
                    target,
                    f"{count} requeued: {', '.join(sorted(outcome.replayed))}"[:_DETAIL_LIMIT],
                    {"count": count},
                )
                return _back("dead", "dead_replayed", entry)
        entry = await audit(
            request, "dead_letter_requeue", target, f"failed: {failure}", {"detail": failure}
        )
        return _back("dead", "dead_failed", entry)

    @router.get("/static/ops.css")
    async def stylesheet() -> Response:
        return FileResponse(HERE / "static" / "ops.css", media_type="text/css; charset=utf-8")

    return router
