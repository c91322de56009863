"""Staff login and logout pages.

The dependencies other pages use to know who is logged in (``require_staff``,
``require_csrf``) are ``gateway.lib.http.auth``'s. The login form itself is
protected by a double-submit cookie, since there is no session yet.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from gateway.lib.http.auth import SESSION_COOKIE, accounts_for, require_csrf, services_of
from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.store.staff import StaffSession

LOGIN_CSRF_COOKIE = "intake_login_csrf"
_pages = Pages((Path(__file__).with_name("templates"),))
# Files the staff pages load (a fixed list: nothing else under static/ is served).
STATIC = {"staff.css": "text/css; charset=utf-8"}
STATIC_DIR = Path(__file__).with_name("static")


def _safe_next(target: str) -> str:
    """Only paths on this site: never an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/letters/"


def _secure(request: Request) -> bool:
    return services_of(request).settings.public_base_url.startswith("https:")


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/staff", include_in_schema=False)

    def login_page(request: Request, next_: str, error: str | None, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = _pages.render(
            request,
            "login.html",
            status,
            csrf_token=token,
            next=_safe_next(next_),
            error=error,
            staff=None,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request)
        )
        return response

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, "not_found", "no such file")
        response = FileResponse(STATIC_DIR / name, media_type=STATIC[name])
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @router.get("/login")
    async def login_form(request: Request, next: str = "/letters/") -> Response:
        return login_page(request, next, None, 200)

    @router.post("/login")
    async def login(
        request: Request,
        name: Annotated[str, Form(max_length=128)],
        password: Annotated[str, Form(max_length=1024)],
        csrf_token: Annotated[str, Form(max_length=128)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/letters/",
    ) -> Response:
        texts = _pages.texts_for(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(csrf_token, expected):
            return login_page(request, next, texts["csrf_failed"], 403)
        accounts = accounts_for(services)
        user = await run_in_threadpool(accounts.authenticate, name, password)
        if user is None:
            return login_page(request, next, texts["login_failed"], 401)
        token, _session = await run_in_threadpool(accounts.open_session, user)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=accounts.max_age,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @router.post("/logout")
    async def logout(
        request: Request, _staff: Annotated[StaffSession, Depends(require_csrf)]
    ) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        await run_in_threadpool(accounts_for(services).close_session, token)
        response = RedirectResponse("/staff/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router
