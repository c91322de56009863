"""Staff login and logout pages, and the dependencies other pages use.

``require_staff`` gives the logged-in ``StaffSession`` or sends the browser
to the login page (303; 401 for scripts). ``require_csrf`` checks the
session's CSRF token on a POST (form field ``csrf_token`` or header
``X-CSRF-Token``). The login form itself is protected by a double-submit
cookie, since there is no session yet.
"""

from __future__ import annotations

import hmac
import secrets
import weakref
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import Engine

from gateway.errors import ApiError
from gateway.services import Services
from gateway.staff.accounts import StaffAccounts, StaffSession
from gateway.staff.pages import Pages

SESSION_COOKIE = "intake_staff"
LOGIN_CSRF_COOKIE = "intake_login_csrf"
CSRF_HEADER = "x-csrf-token"
# Used when INTAKE_SESSION_SECRET is empty: sessions end when the process restarts.
_PROCESS_SECRET = secrets.token_bytes(32)
_accounts: weakref.WeakKeyDictionary[Engine, StaffAccounts] = weakref.WeakKeyDictionary()
_pages = Pages()
# Files the staff pages load (a fixed list: nothing else under static/ is served).
STATIC = {"staff.css": "text/css; charset=utf-8"}
STATIC_DIR = Path(__file__).with_name("static")


def accounts_for(services: Services) -> StaffAccounts:
    """The process's ``StaffAccounts`` for this store (one per engine)."""
    engine = services.store.engine
    found = _accounts.get(engine)
    if found is None:
        settings = services.settings
        secret = settings.session_secret.get_secret_value().encode() or _PROCESS_SECRET
        found = _accounts[engine] = StaffAccounts(engine, secret, settings.session_max_age)
    return found


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and request.method == "GET"


async def require_staff(request: Request) -> StaffSession:
    """The logged-in staff member, or a redirect to the login page."""
    token = request.cookies.get(SESSION_COOKIE)
    accounts = accounts_for(_services(request))
    session = await run_in_threadpool(accounts.session_for, token) if token else None
    if session is None:
        if _wants_html(request):
            target = quote(
                request.url.path + ("?" + request.url.query if request.url.query else "")
            )
            raise HTTPException(
                303, "login required", headers={"Location": f"/staff/login?next={target}"}
            )
        raise ApiError(401, "unauthorized", "staff login required")
    request.state.staff = session
    return session


async def require_csrf(
    request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
) -> StaffSession:
    """``require_staff`` plus a valid CSRF token on this (state-changing) request."""
    provided = request.headers.get(CSRF_HEADER)
    if provided is None:
        form = await request.form()
        value = form.get("csrf_token")
        provided = value if isinstance(value, str) else None
    if not provided or not hmac.compare_digest(provided, staff.csrf_token):
        raise ApiError(403, "csrf_failed", _pages.texts_for(request)["csrf_failed"])
    return staff


def _safe_next(target: str) -> str:
    """Only paths on this site: never an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/letters/"


def _secure(request: Request) -> bool:
    return _services(request).settings.public_base_url.startswith("https:")


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
