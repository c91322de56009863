"""Staff login, logout and password change pages.

The dependencies other pages use to know who is logged in (``require_staff``,
``require_csrf``) are ``gateway.lib.http.auth``'s. The login form itself is
protected by a double-submit cookie, since there is no session yet; its
token is signed, dated and good for one attempt (``LoginGuard``).

POST /staff/login -> form token used up -> throttle (account and address:
429 with Retry-After while locked, the password not even checked; else the
attempt is counted as a failure before the password is checked, refunded on
success) -> password -> session, a "trusted browser" cookie, an audit line.
Every success and failure is logged with the name and the masked address,
never the password.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from gateway.lib.http.auth import (
    SESSION_COOKIE,
    accounts_for,
    audit,
    client_address,
    guard_for,
    masked_address,
    require_csrf,
    require_staff,
    services_of,
)
from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.store.passwords import WeakPassword
from gateway.store.staff import StaffSession
from gateway.store.staff_logins import DEVICE_AGE

log = logging.getLogger("intake.staff")

LOGIN_CSRF_COOKIE = "intake_login_csrf"
# A browser that logged in as a user: that user's lock does not hold it.
DEVICE_COOKIE = "intake_staff_device"
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


def _shown(name: str) -> str:
    """A name as typed, fit for one log line (no line breaks, bounded)."""
    return repr(name[:64])


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/staff", include_in_schema=False)
    guard = guard_for(services)

    def login_page(
        request: Request,
        next_: str,
        error: str | None,
        status: int,
        headers: dict[str, str] | None = None,
    ) -> Response:
        token = guard.form_token()
        response = _pages.render(
            request,
            "login.html",
            status,
            csrf_token=token,
            next=_safe_next(next_),
            error=error,
            staff=None,
        )
        response.headers.update(headers or {})
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
        address = client_address(request)
        shown_address = masked_address(address)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if (
            not expected
            or not hmac.compare_digest(csrf_token, expected)
            or not await run_in_threadpool(guard.use_form_token, csrf_token)
        ):
            log.warning(
                "staff login refused (form token) for %s from %s", _shown(name), shown_address
            )
            return login_page(request, next, texts["csrf_failed"], 403)
        account_key, address_key = guard.account(name), guard.address(address)
        trusted = guard.trusted(request.cookies.get(DEVICE_COOKIE, ""), name)
        keys = [address_key] if trusted else [account_key, address_key]
        # Checked and counted as a failure in one step, before the password is
        # checked (refunded below on success): parallel guesses cannot all pass
        # one unlock window, in this process or another sharing the store
        # (``LoginGuard.attempt``: one write transaction per attempt).
        attempt = await run_in_threadpool(guard.attempt, keys, [account_key, address_key])
        if attempt.wait:
            log.warning(
                "staff login refused (throttled, %d s left) for %s from %s",
                attempt.wait,
                _shown(name),
                shown_address,
            )
            return login_page(
                request,
                next,
                texts["login_throttled"].format(seconds=attempt.wait),
                429,
                {"Retry-After": str(attempt.wait)},
            )
        accounts = accounts_for(services)
        user = await run_in_threadpool(accounts.authenticate, name, password)
        if user is None:
            locked = attempt.locked  # already counted by the attempt
            log.warning(
                "staff login failed for %s from %s%s",
                _shown(name),
                shown_address,
                f" (locked for {locked} s)" if locked else "",
            )
            if await run_in_threadpool(accounts.exists, name):
                await run_in_threadpool(
                    lambda: services.store.staff_audit.record(
                        name,
                        "login_failed",
                        address=shown_address,
                        detail=f"locked for {locked} s" if locked else None,
                    )
                )
            return login_page(request, next, texts["login_failed"], 401)
        await run_in_threadpool(guard.succeeded, account_key, [address_key])
        token, session = await run_in_threadpool(accounts.open_session, user)
        request.state.staff = session
        await audit(request, "login")
        log.info("staff login of %s (%s) from %s", _shown(user.name), user.role, shown_address)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=accounts.max_age,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        response.set_cookie(
            DEVICE_COOKIE,
            guard.device_token(user.name),
            max_age=int(DEVICE_AGE.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/staff/login",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @router.post("/logout")
    async def logout(
        request: Request, staff: Annotated[StaffSession, Depends(require_csrf)]
    ) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        await run_in_threadpool(accounts_for(services).close_session, token)
        await audit(request, "logout")
        log.info("staff logout of %s", _shown(staff.user.name))
        response = RedirectResponse("/staff/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    _add_password_routes(router, services)
    return router


def _add_password_routes(router: APIRouter, services: Services) -> None:
    """The logged-in member's own password change (any role)."""

    @router.get("/password")
    async def password_form(
        request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        return _pages.render(request, "password.html", staff=staff, error=None, done=False)

    @router.post("/password")
    async def change_password(
        request: Request,
        staff: Annotated[StaffSession, Depends(require_csrf)],
        current: Annotated[str, Form(max_length=1024)],
        new: Annotated[str, Form(max_length=1024)],
        confirm: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        texts = _pages.texts_for(request)

        def again(error: str, status: int) -> Response:
            return _pages.render(
                request, "password.html", status, staff=staff, error=error, done=False
            )

        if new != confirm:
            return again(texts["password_mismatch"], 422)
        accounts = accounts_for(services)
        token = request.cookies.get(SESSION_COOKIE, "")
        try:
            changed = await run_in_threadpool(
                accounts.change_password, staff.user, current, new, token
            )
        except WeakPassword:
            return again(texts["password_weak"], 422)
        if not changed:
            await audit(request, "password_change_refused")
            return again(texts["password_wrong"], 403)
        await audit(request, "password_changed", staff.user.name)
        log.info("staff password changed by %s", _shown(staff.user.name))
        return _pages.render(request, "password.html", staff=staff, error=None, done=True)
