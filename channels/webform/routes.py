"""HTTP edge of the public form: ``/`` (French), ``/ar/``, ``/en/``, ``/es/``.

browser --GET--> page with a CSRF token --POST--> **guards** (size, CSRF,
honeypot, rate limit) -> validation -> ``hand_off`` (evidence, complaint,
outbox in one commit) -> confirmation page with the reference.

Every answer is a page in the customer's language, never JSON: errors go
back to the form with what was typed (422, 403, 429, 413), our own failures
are a 503 page with ``Retry-After`` and nothing recorded. The raw multipart
body as received is the evidence; a refused submission is quarantined with
its reason. A reloaded or double-clicked POST carries the same token nonce
and content, so it finds the complaint already recorded (same reference).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import Message

from channels.intake import hand_off
from channels.webform.attachments import megabytes
from channels.webform.form import (
    MAX_FILES,
    MAX_TEXT,
    FieldError,
    Submission,
    Upload,
    build_draft,
    validate,
)
from channels.webform.form import content_hash as hash_content
from channels.webform.guard import COOKIE, FIELD, FormGuard
from channels.webform.i18n import BY_CODE, DEFAULT, HERE, LANGUAGES, UiLanguage
from channels.webform.pages import Notice, Pages
from channels.webform.ratelimit import RateLimiter
from config.settings import Settings
from gateway.services import Services
from gateway.store import StoreUnavailable
from normalizer.contract import Channel
from normalizer.draft import RawInput
from normalizer.ocr import ScanLimits

log = logging.getLogger("intake.webform")

LANGUAGE_COOKIE = "cp_lang"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
RETRY_AFTER_SECONDS = "30"
ASSET_TYPES = {"form.css": "text/css; charset=utf-8", "form.js": "text/javascript; charset=utf-8"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Admitted:
    """A submission past the guards: its raw body (the evidence) and who sent it."""

    body: bytes
    content_type: str
    sub: Submission
    nonce: str
    client: str


class WebForm:
    """The form's state for one process: guards, limiter, pages, limits."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.services = services
        self.guard = FormGuard.from_secret(
            settings.session_secret.get_secret_value(), settings.session_max_age
        )
        self.limiter = RateLimiter(services.store.engine, settings.webform_max_per_hour)
        self.limits = ScanLimits(
            max_bytes=min(settings.webform_max_attachment_bytes, settings.letter_max_bytes),
            max_pages=settings.letter_max_pages,
            max_pixels=settings.letter_max_pixels,
            timeout=settings.ocr_timeout,
            memory_mb=settings.ocr_memory_mb,
        )
        self.max_body = max_body_bytes(settings)
        self.pages = Pages(settings.timezone, self.limits.max_bytes)
        self.secure_cookies = settings.public_base_url.startswith("https://")

    # -- answers ------------------------------------------------------------
    def page(
        self,
        language: UiLanguage,
        request: Request,
        status: int = 200,
        *,
        sub: Submission | None = None,
        errors: Sequence[FieldError] = (),
        notice: str | None = None,
        **params: object,
    ) -> HTMLResponse:
        nonce = request.cookies.get(COOKIE) or self.guard.new_nonce()
        html = self.pages.form(
            language,
            self.guard.issue(nonce),
            values=sub.values if sub else None,
            errors=errors,
            notice=Notice(notice, params) if notice else None,
        )
        response = HTMLResponse(html, status_code=status)
        self._cookies(response, nonce, language)
        if status in (429, 503):
            response.headers["Retry-After"] = "3600" if status == 429 else RETRY_AFTER_SECONDS
        return response

    def _cookies(self, response: Response, nonce: str, language: UiLanguage) -> None:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie"
        response.set_cookie(
            COOKIE, nonce, httponly=True, samesite="lax", secure=self.secure_cookies
        )
        response.set_cookie(
            LANGUAGE_COOKIE,
            language.code,
            max_age=LANGUAGE_COOKIE_AGE,
            samesite="lax",
            secure=self.secure_cookies,
        )

    # -- GET ----------------------------------------------------------------
    def show(self, language: UiLanguage) -> Handler:
        async def show_form(request: Request) -> Response:
            remembered = BY_CODE.get(request.cookies.get(LANGUAGE_COOKIE, ""))
            if language is DEFAULT and remembered and remembered is not DEFAULT:
                redirect = RedirectResponse(remembered.path, status_code=303)
                redirect.headers["Vary"] = "Cookie"
                return redirect
            return self.page(language, request)

        return show_form

    # -- POST ---------------------------------------------------------------
    def submit(self, language: UiLanguage) -> Handler:
        async def submit_form(request: Request) -> Response:
            admitted: Admitted | None = None
            try:
                outcome = await self._admit(language, request)
                if isinstance(outcome, Response):
                    return outcome
                admitted = outcome
                return await self._record(language, request, admitted)
            except Exception as exc:
                # Our failure: nothing recorded, the customer's text comes back.
                if not isinstance(exc, StoreUnavailable):
                    log.exception("web form submission failed")
                sub = admitted.sub if admitted else None
                return self.page(language, request, 503, sub=sub, notice="unavailable")

        return submit_form

    async def _admit(self, language: UiLanguage, request: Request) -> Admitted | Response:
        """The checks that need no store, cheapest first: size, form syntax, CSRF."""
        body = await read_limited(request, self.max_body)
        if body is None:
            mb = megabytes(self.max_body)
            return self.page(language, request, 413, notice="request_too_large", max_mb=mb)
        try:
            form = await parse_form(request, body)
        except HTTPException:
            return self.page(language, request, 400, notice="rejected")
        sub = Submission.from_form(form, await uploads_of(form))
        nonce = self.guard.check(str(form.get(FIELD) or ""), request.cookies.get(COOKIE))
        if nonce is None:
            return self.page(language, request, 403, sub=sub, notice="form_expired")
        return Admitted(
            body=body,
            content_type=request.headers.get("content-type", "multipart/form-data"),
            sub=sub,
            nonce=nonce,
            client=self.guard.client_key(request.client.host if request.client else "unknown"),
        )

    async def _record(self, language: UiLanguage, request: Request, admitted: Admitted) -> Response:
        """Honeypot, rate limit, validation, then the durable hand-off and the confirmation."""
        sub = admitted.sub
        if sub.honeypot:
            await self._quarantine(admitted, "honeypot", "the hidden field was filled")
            return self.page(language, request, 400, sub=sub, notice="rejected")
        if not await run_in_threadpool(self.limiter.allow, admitted.client):
            log.warning("web form rate limit reached for a client")
            return self.page(language, request, 429, sub=sub, notice="rate_limited")
        checked = await run_in_threadpool(validate, sub, self.limits)
        if checked.errors:
            codes = ", ".join(f"{error.field}:{error.code}" for error in checked.errors)
            await self._quarantine(admitted, "invalid_field", codes)
            return self.page(language, request, 422, sub=sub, errors=checked.errors)
        received_at = datetime.now(UTC)
        raw = RawInput(
            channel=Channel.WEBFORM,
            data=admitted.body,
            content_type=admitted.content_type,
            received_at=received_at,
            dedup_key=f"webform:{admitted.nonce}:{hash_content(sub)}",
            source_ids={"ui_language": language.code, "client": admitted.client[:16]},
        )
        draft = build_draft(sub, checked, received_at)
        result = await run_in_threadpool(hand_off, self.services, raw, draft)
        response = HTMLResponse(self.pages.confirmation(language, result.message))
        self._cookies(response, admitted.nonce, language)
        return response

    async def _quarantine(self, admitted: Admitted, code: str, reason: str) -> None:
        await run_in_threadpool(
            self.services.store.complaints.quarantine,
            channel=Channel.WEBFORM.value,
            data=admitted.body,
            content_type=admitted.content_type,
            reason_code=code,
            reason=reason,
            source_ids={"client": admitted.client[:16]},
        )


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_form(request: Request, body: bytes) -> FormData:
    """Parse the body already read (and kept as evidence) as a form, with part limits."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    again = Request(request.scope, replay)
    # Room for a few files too many, so the customer gets the friendly
    # "five at most" error rather than a refusal of the whole request.
    return await again.form(max_files=MAX_FILES * 2, max_fields=40, max_part_size=4 * MAX_TEXT)


async def uploads_of(form: FormData) -> list[Upload]:
    found: list[Upload] = []
    for item in form.getlist("attachments"):
        if not isinstance(item, UploadFile) or not item.filename:
            continue  # the empty part browsers send when no file was chosen
        data = await item.read()
        name = _UNSAFE_NAME.sub("", Path(item.filename.replace("\\", "/")).name)[:200]
        found.append(Upload(name=name or "attachment", data=data, declared_type=item.content_type))
    return found


def asset(name: str) -> Response:
    """The form's CSS and JS (a fixed list: nothing else under the folder is served)."""
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        return Response(status_code=404)
    response = FileResponse(HERE / "static" / name, media_type=media_type)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def remember_french(_request: Request) -> Response:
    """``/fr/``: the switcher's French link; remember the choice, show ``/``."""
    response = RedirectResponse(DEFAULT.path, status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, DEFAULT.code, max_age=LANGUAGE_COOKIE_AGE, samesite="lax")
    return response


def max_body_bytes(settings: Settings) -> int:
    """The largest form POST: five files at the cap, plus the text fields."""
    per_file = min(settings.webform_max_attachment_bytes, settings.letter_max_bytes)
    return MAX_FILES * per_file + 4 * MAX_TEXT + 64 * 1024


def body_limits(settings: Settings) -> dict[str, int]:
    """Body size per form path, for the app-wide ``BodySizeLimit`` (the form checks it too)."""
    return {language.action: max_body_bytes(settings) for language in LANGUAGES}


def build_router(services: Services) -> APIRouter:
    web = WebForm(services)
    router = APIRouter(include_in_schema=False)
    for language in LANGUAGES:
        router.add_api_route(language.path, web.show(language), methods=["GET"])
        router.add_api_route(language.action, web.submit(language), methods=["POST"])
    router.add_api_route("/fr/", remember_french, methods=["GET"])
    router.add_api_route("/assets/webform/{name}", asset, methods=["GET"])
    return router
