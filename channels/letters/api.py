"""The letter upload API: ``POST /v1/letters`` and ``GET /v1/letters/{id}``.

For a scanning station or a document-management system. Multipart upload
(``files``: one or more scans of one letter, pages in order;
``received_on``: the date the mailroom received it, default today;
``sender_name``, ``sender_address``), API-key auth as for complaints
(scope ``letters:write``; reading back: ``complaints:status`` or
``complaints:read-all``).
``202`` once the scans, the complaint and the OCR job are committed; the
complaint reaches the queue when OCR is done. Refusals speak the caller's
``Accept-Language`` (French, Arabic or English).

scanning station -> **here** -> ``intake.accept_letter`` -> the OCR
``worker``; ``GET`` reads the letter back from ``Store.letters``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from channels.letters.intake import (
    LetterUpload,
    ScanRejectedDate,
    accept_letter,
    check_received_on,
)
from channels.letters.status import letter_view, read_files, reason_language
from gateway.lib.http.auth import missing_scope, require_client, require_scope
from gateway.lib.http.errors import ApiError
from gateway.lib.http.links import link_for
from gateway.lib.services import Services
from gateway.store.apikeys import STATUS, ApiClient
from normalizer.ocr import ScanRejected


def refusal(exc: ScanRejected, language: str) -> ApiError:
    where = f" ({exc.file_name})" if exc.file_name else ""
    return ApiError(exc.status, exc.code, exc.message(language) + where, field="files")


def parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422, "invalid_field", "received_on: not a date (YYYY-MM-DD)", field="received_on"
        ) from None


async def submit(services: Services, upload: LetterUpload, language: str) -> Any:
    """``accept_letter`` in HTTP terms (the API's and the upload page's)."""
    settings = services.settings
    try:
        # A person typed the date: bounded in the past (INTAKE_MAX_BACKDATE_DAYS).
        check_received_on(
            upload.received_on, settings.timezone, timedelta(days=settings.max_backdate_days)
        )
        return await run_in_threadpool(accept_letter, services, upload)
    except ScanRejected as exc:
        raise refusal(exc, language) from None
    except ScanRejectedDate as exc:
        raise ApiError(422, "invalid_field", str(exc), field="received_on") from None


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["letters"])
    settings = services.settings

    @router.post(
        "/letters",
        status_code=202,
        responses={200: {}, 401: {}, 403: {}, 413: {}, 415: {}, 422: {}, 503: {}},
    )
    # FastAPI reads each form field from a parameter.
    async def upload_letter(  # noqa: PLR0917
        request: Request,
        response: Response,
        client: Annotated[ApiClient, Depends(require_scope("letters:write"))],
        files: Annotated[list[UploadFile], File(description="Scans of one letter, in order")],
        received_on: Annotated[str | None, Form()] = None,
        sender_name: Annotated[str | None, Form(max_length=200)] = None,
        sender_address: Annotated[str | None, Form(max_length=1000)] = None,
    ) -> dict[str, Any]:
        language = reason_language(request)
        try:
            scans = await read_files(files, settings.letter_max_bytes)
        except ScanRejected as exc:
            raise refusal(exc, language) from None
        upload = LetterUpload(
            files=scans,
            source="api",
            received_on=parse_date(received_on),
            sender_name=sender_name,
            sender_address=sender_address,
            source_ids={"api_client": client.name},
        )
        accepted = await submit(services, upload, language)
        status_url = link_for(request, settings, "get_letter", letter_id=accepted.letter_id)
        response.status_code = 202 if accepted.created else 200
        response.headers["Location"] = status_url
        return {
            "id": accepted.letter_id,
            "reference": accepted.reference,
            "complaint_id": accepted.complaint_id,
            "pages": accepted.pages,
            "status_url": status_url,
        }

    @router.get("/letters/{letter_id}", name="get_letter", responses={401: {}, 403: {}, 404: {}})
    async def get_letter(
        request: Request, letter_id: str, client: Annotated[ApiClient, Depends(require_client)]
    ) -> dict[str, Any]:
        if not (client.has(STATUS) or client.reads_all):
            raise missing_scope(STATUS)
        row = await run_in_threadpool(services.store.letters.get, letter_id)
        if row is None or not await run_in_threadpool(_readable, client, row.reference):
            raise ApiError(404, "not_found", f"no letter with id {letter_id}")
        return letter_view(row, reason_language(request), with_text=True)

    def _readable(client: ApiClient, reference: str) -> bool:
        """``ApiClient.may_read`` on the letter's complaint (who submitted it)."""
        if client.reads_all:
            return True  # may_read would say so too; this spares loading the complaint
        complaint = services.store.complaints.get_by_reference(reference)
        return complaint is not None and client.may_read(complaint.evidence.api_client)

    return router
