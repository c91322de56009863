"""The mailroom's pages (French and Arabic), behind a staff login.

Upload: ``GET /letters/`` shows the page; the page's script posts each
letter to ``POST /letters/upload`` (session cookie and CSRF header) with
per-file progress, then polls ``GET /letters/status/{id}`` until OCR is
done, and shows the reference, the detected language (named in the page's
language), a thumbnail and the first lines of text, or why the letter was
refused.

Acknowledgements to post: ``GET /letters/acks`` lists the acknowledgement
letters the ack worker queued, oldest first, with the days left before the
10-day deadline; each has its PDF (``/letters/acks/{id}/pdf``; all of them
at once: ``/letters/acks/all.pdf``) and a "posted" button (``POST
/letters/acks/{id}/posted``, CSRF) that records it as sent through
``Mailroom``, the same path as the partner API, so ``ack.sent`` is
published.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse

from channels.letters.api import parse_date, submit
from channels.letters.intake import LetterUpload
from channels.letters.queue import LetterQueue
from channels.letters.status import letter_view, read_files
from channels.webform.i18n import format_date
from gateway.acks.letter import QueuedLetter, mailroom_for
from gateway.acks.routes import mailroom_errors, pdf_response
from gateway.lib.http.auth import require_csrf, require_staff
from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages, page_language
from gateway.lib.services import Services
from gateway.store.staff import StaffSession
from gateway.store.tables import LetterRow
from normalizer.contract import REFERENCE_PATTERN
from normalizer.ocr import ScanRejected

HERE = Path(__file__).parent
STATIC = {"upload.js": "text/javascript", "upload.css": "text/css", "mailroom.css": "text/css"}
# A letter this many days or fewer from its acknowledgement deadline is shown as urgent.
CLOSE_DAYS = 2
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
Staff = Annotated[StaffSession, Depends(require_staff)]
StaffPosting = Annotated[StaffSession, Depends(require_csrf)]


def language_name(tag: str | None, texts: dict[str, str]) -> str | None:
    """``ary-Arab`` -> "darija (arabe)" in the page's language; an unlisted tag as it is."""
    return None if tag is None else texts.get(f"lang_{tag}", tag)


def page_view(row: LetterRow, request: Request) -> dict[str, Any]:
    """The letter as the API shows it, plus its language's name for the page."""
    view = letter_view(row, page_language(request))
    view["language_name"] = language_name(view["language"], _pages.texts_for(request))
    return view


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
    _add_upload_routes(router, services)
    _add_ack_routes(router, services)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name])

    return router


def _add_upload_routes(router: APIRouter, services: Services) -> None:
    settings = services.settings
    queue = LetterQueue(services.store.engine)

    async def letter_or_404(letter_id: str) -> LetterRow:
        row = await run_in_threadpool(queue.get, letter_id)
        if row is None:
            raise ApiError(404, "not_found", f"no letter with id {letter_id}")
        return row

    @router.get("/")
    async def upload_page(request: Request, staff: Staff) -> Response:
        texts = _pages.texts_for(request)
        today = datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        return _pages.render(
            request,
            "upload.html",
            staff=staff,
            today=today,
            texts_json=json.dumps(texts, ensure_ascii=False).replace("</", "<\\/"),
        )

    @router.post("/upload")
    # FastAPI reads each form field from a parameter.
    async def upload(  # noqa: PLR0917
        request: Request,
        response: Response,
        staff: StaffPosting,
        files: Annotated[list[UploadFile], File()],
        received_on: Annotated[str | None, Form()] = None,
        sender_name: Annotated[str | None, Form(max_length=200)] = None,
        sender_address: Annotated[str | None, Form(max_length=1000)] = None,
    ) -> dict[str, Any]:
        language = page_language(request)
        try:
            scans = await read_files(files, settings.letter_max_bytes)
        except ScanRejected as exc:
            raise ApiError(exc.status, exc.code, exc.message(language), field="files") from None
        upload = LetterUpload(
            files=scans,
            source="page",
            received_on=parse_date(received_on),
            sender_name=sender_name or None,
            sender_address=sender_address or None,
            uploaded_by=staff.user.id,
            source_ids={"staff_user": staff.user.name},
        )
        accepted = await submit(services, upload, language)
        response.status_code = 202 if accepted.created else 200
        return page_view(await letter_or_404(accepted.letter_id), request)

    @router.get("/status/{letter_id}")
    async def letter_status(request: Request, letter_id: str, _staff: Staff) -> dict[str, Any]:
        return page_view(await letter_or_404(letter_id), request)

    @router.get("/{letter_id}/thumbnail.png")
    async def thumbnail(letter_id: str, _staff: Staff) -> Response:
        row = await letter_or_404(letter_id)
        if not row.thumbnail:
            raise ApiError(404, "not_found", "no thumbnail yet")
        return FileResponse(
            services.store.blobs.path_for(row.thumbnail.split(":")[-1]), media_type="image/png"
        )


def _add_ack_routes(router: APIRouter, services: Services) -> None:
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
    async def letter_posted(ack_id: str, _staff: StaffPosting) -> Response:
        with mailroom_errors():
            record = await run_in_threadpool(mailroom.mark_posted, ack_id, datetime.now(UTC))
        return RedirectResponse(f"/letters/acks?posted={record.reference}", status_code=303)
