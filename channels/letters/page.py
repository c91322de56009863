"""The mailroom's upload page (French and Arabic), behind a staff login.

staff's browser -> **this page** (``POST /letters/upload``) ->
``intake.accept_letter`` -> the OCR ``worker`` -> ``GET
/letters/status/{id}`` -> the page shows what was read.

Upload: ``GET /letters/`` shows the page; the page's script posts each
letter to ``POST /letters/upload`` (session cookie and CSRF header) with
per-file progress, then polls ``GET /letters/status/{id}`` until OCR is
done, and shows the reference, the detected language (named in the page's
language), a thumbnail and the first lines of text, or why the letter was
refused.

The mailroom's other tab, the acknowledgement letters to post
(``/letters/acks``), belongs to the acknowledgements, not to this channel;
the navigation between the two tabs is in the staff templates
(``_nav.html``), and ``static/mailroom.css``, served here, styles both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from channels.letters.api import parse_date, submit
from channels.letters.intake import LetterUpload
from channels.letters.status import letter_view, read_files
from gateway.lib.http.auth import audit, require_csrf, require_staff
from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages, page_language
from gateway.lib.services import Services
from gateway.store.letters import LetterRow
from gateway.store.staff import StaffSession
from normalizer.ocr import ScanRejected

HERE = Path(__file__).parent
STATIC = {"upload.js": "text/javascript", "upload.css": "text/css", "mailroom.css": "text/css"}
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


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/letters", include_in_schema=False)
    _add_upload_routes(router, services)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name])

    return router


def _add_upload_routes(router: APIRouter, services: Services) -> None:
    settings = services.settings
    queue = services.store.letters

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
        await audit(
            request,
            "letter_uploaded",
            accepted.letter_id,
            f"{len(scans)} file(s){'' if accepted.created else ', already known'}",
        )
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
