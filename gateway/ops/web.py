"""The operator page: ``/ops/`` behind the staff login, French or Arabic.

browser --GET /ops/--> **dashboard** (plots, tiles, lists) ; replay buttons
--POST (session + CSRF token)--> replay --303--> ``/ops/`` with a notice.

Plain forms and server-rendered SVG: the page works without JavaScript and
under a CSP that forbids scripts. Replays run in a worker thread (database,
blob store, broker); our failures answer 503 like the rest of the gateway.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from gateway.lib.http.auth import require_csrf, require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.ops.dashboard import build_dashboard, human_age
from gateway.ops.quarantine import replay
from gateway.store.quarantine import ReplayResult
from gateway.store.staff import StaffSession
from router.broker import BrokerUnavailable
from router.deadletters import DeadLetters

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
_DETAIL_LIMIT = 300


def _back(anchor: str, **notice: str) -> RedirectResponse:
    query = urlencode({key: value[:_DETAIL_LIMIT] for key, value in notice.items()})
    return RedirectResponse(f"/ops/?{query}#{anchor}", status_code=303)


def _notice(request: Request, texts: dict[str, str]) -> str | None:
    """The sentence for a notice carried by the redirect's query (from the texts table)."""
    kind = request.query_params.get("notice", "")
    template = texts.get(f"notice_{kind}")
    if template is None:
        return None
    params = {key: request.query_params.get(key, "") for key in ("detail", "reference", "count")}
    return template.format(**params)


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/ops", include_in_schema=False)
    zone = ZoneInfo(services.settings.timezone)

    @router.get("/")
    async def dashboard(
        request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        texts = _pages.texts_for(request)
        board = await run_in_threadpool(build_dashboard, services, texts)
        return _pages.render(
            request,
            "ops.html",
            staff=staff,
            board=board,
            notice=_notice(request, texts),
            age=human_age,
            local=lambda moment: moment.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S"),
        )

    @router.post("/quarantine/{item_id}/replay")
    async def replay_quarantined(
        item_id: str, _staff: Annotated[StaffSession, Depends(require_csrf)]
    ) -> Response:
        item = await run_in_threadpool(services.store.quarantine.get, item_id)
        if item is None:
            return _back("quarantine", notice="not_found")
        result: ReplayResult = await run_in_threadpool(replay, services, item)
        if not result.ok:
            return _back("quarantine", notice="refused", detail=result.detail)
        return _back(
            "quarantine", notice="replayed", detail=result.detail, reference=result.reference or ""
        )

    @router.post("/dead-letters/replay")
    async def replay_dead_letters(
        _staff: Annotated[StaffSession, Depends(require_csrf)],
        message_id: Annotated[str, Form(max_length=255)] = "",
        queue: Annotated[str, Form(max_length=255)] = "",
    ) -> Response:
        wanted = None if message_id == "*" else {message_id}
        replay_letters = partial(DeadLetters(services.settings).replay, queue=queue or None)
        try:
            outcome = await run_in_threadpool(replay_letters, wanted)
        except BrokerUnavailable as exc:
            return _back("dead", notice="dead_failed", detail=str(exc))
        if outcome.failed:
            return _back("dead", notice="dead_failed", detail="; ".join(outcome.failed.values()))
        return _back("dead", notice="dead_replayed", count=str(len(outcome.replayed)))

    @router.get("/static/ops.css")
    async def stylesheet() -> Response:
        return FileResponse(HERE / "static" / "ops.css", media_type="text/css; charset=utf-8")

    return router
