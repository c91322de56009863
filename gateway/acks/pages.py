"""The mailroom's "acknowledgements to post" page (French and Arabic), behind a staff login.

ack worker -> letter PDF in the blob store, row ``queued`` -> **this page**
(``GET /letters/acks``, staff session) -> ``Mailroom`` -> "posted" ->
``ack.sent`` published with the posting time.

``GET /letters/acks`` lists the acknowledgement letters the ack worker
queued, oldest first, with the days left before the 10-day deadline; each
has its PDF (``/letters/acks/{id}/pdf``; all of them at once:
``/letters/acks/all.pdf``) and a "posted" button (``POST
/letters/acks/{id}/posted``, CSRF) that records it as sent through
``Mailroom``, the same path as the partner API (``routes``), so ``ack.sent``
is published.

A tab of the mailroom beside the letters channel's upload page (``/letters/``):
the two share the navigation (``_nav.html``, the staff templates) and the
stylesheet ``/letters/static/mailroom.css`` the letters channel serves.
Texts: ``texts.json`` (the navigation's: the staff texts).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from channels.webform.i18n import format_date
from gateway.acks.mailroom import QueuedLetter, mailroom_for
from gateway.acks.routes import mailroom_errors, pdf_response
from gateway.lib.http.auth import audit, require_csrf, require_staff
from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages, page_language
from gateway.lib.services import Services
from gateway.store.staff import StaffSession
from normalizer.contract import REFERENCE_PATTERN

HERE = Path(__file__).parent
# A letter this many days or fewer from its acknowledgement deadline is shown as urgent.
CLOSE_DAYS = 2
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
Staff = Annotated[StaffSession, Depends(require_staff)]
StaffPosting = Annotated[StaffSession, Depends(require_csrf)]


def urgency(days_left: int | None) -> str:
    """The row's highlight: ``late`` past the deadline, ``close`` within CLOSE_DAYS."""
    if days_left is None:
        return ""
    if days_left < 0:
        return "late"
    return "close" if days_left <= CLOSE_DAYS else ""


def deadline_text(days_left: int | None, texts: dict[str, str]) -> str:
    if days_left is None:
        return texts["acks_unknown"]
    if days_left < 0:
        return texts["acks_late"].format(days=-days_left)
    if days_left == 0:
        return texts["acks_due_today"]
    return texts["acks_days_left"].format(days=days_left)


def letter_rows(
    letters: list[QueuedLetter], lang: str, zone: str, texts: dict[str, str]
) -> list[dict[str, Any]]:
    """What the acknowledgements page shows of each queued letter."""
    return [
        {
            "id": letter.record.id,
            "reference": letter.record.reference,
            "name": letter.name,
            "address": letter.address,
            "queued_on": format_date(letter.record.created_at, lang, zone),
            "due_on": format_date(letter.due_at, lang, zone) if letter.due_at else "",
            "deadline": deadline_text(letter.days_left, texts),
            "urgency": urgency(letter.days_left),
        }
        for letter in letters
    ]


def posted_notice(reference: str | None, texts: dict[str, str]) -> str | None:
    """The confirmation after a letter was marked posted (only a real reference is echoed)."""
    if reference and re.fullmatch(REFERENCE_PATTERN, reference):
        return texts["acks_posted_notice"].format(reference=reference)
    return None


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/letters", include_in_schema=False)
    mailroom = mailroom_for(services)
    zone = services.settings.timezone

    @router.get("/acks")
    async def acks_page(request: Request, staff: Staff, posted: str | None = None) -> Response:
        texts = _pages.texts_for(request)
        letters = await run_in_threadpool(mailroom.queued, datetime.now(UTC))
        return _pages.render(
            request,
            "acks.html",
            staff=staff,
            letters=letter_rows(letters, page_language(request), zone, texts),
            notice=posted_notice(posted, texts),
        )

    @router.get("/acks/all.pdf")
    async def all_letters_pdf(_staff: Staff) -> Response:
        data = await run_in_threadpool(mailroom.all_queued_pdf)
        if data is None:
            raise ApiError(404, "not_found", "no acknowledgement letter to post")
        stamp = datetime.now(ZoneInfo(zone)).date().isoformat()
        return pdf_response(data, f"accuses-reception-{stamp}")

    @router.get("/acks/{ack_id}/pdf")
    async def letter_pdf(ack_id: str, _staff: Staff) -> Response:
        with mailroom_errors():
            record, data = await run_in_threadpool(mailroom.pdf, ack_id)
        return pdf_response(data, f"accuse-reception-{record.reference}")

    @router.post("/acks/{ack_id}/posted")
    async def letter_posted(request: Request, ack_id: str, _staff: StaffPosting) -> Response:
        with mailroom_errors():
            record = await run_in_threadpool(mailroom.mark_posted, ack_id, datetime.now(UTC))
        await audit(request, "ack_letter_posted", ack_id, record.reference)
        return RedirectResponse(f"/letters/acks?posted={record.reference}", status_code=303)

    return router
