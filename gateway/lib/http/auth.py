"""Who is calling: the dependencies routes use to know it.

- ``require_client``: a partner system, by ``Authorization: Bearer KEY``.
- ``require_staff`` / ``require_csrf``: a logged-in staff member (the
  mailroom, operators), and a valid CSRF token on a state-changing request.

Every channel and page takes these from here; the login pages themselves
are ``gateway.staff``'s.
"""

from __future__ import annotations

import hmac
import secrets
import weakref
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.store.apikeys import ApiClient
from gateway.store.staff import StaffAccounts, StaffSession

SESSION_COOKIE = "intake_staff"
CSRF_HEADER = "x-csrf-token"
# Used when INTAKE_SESSION_SECRET is empty: sessions end when the process restarts.
_PROCESS_SECRET = secrets.token_bytes(32)
_accounts: weakref.WeakKeyDictionary[object, StaffAccounts] = weakref.WeakKeyDictionary()
_bearer = HTTPBearer(auto_error=False)
_pages = Pages()


def services_of(request: Request) -> Services:
    """The services of the process serving ``request``."""
    services: Services = request.app.state.services
    return services


async def require_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiClient:
    """The API client behind ``Authorization: Bearer KEY``, or 401."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "unauthorized", "missing API key (Authorization: Bearer KEY)", headers=challenge
        )
    services = services_of(request)
    client = await run_in_threadpool(services.store.api_keys.authenticate, credentials.credentials)
    if client is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
    request.state.client = client
    return client


def accounts_for(services: Services) -> StaffAccounts:
    """The process's ``StaffAccounts`` for this store (one per store)."""
    store = services.store
    found = _accounts.get(store)
    if found is None:
        settings = services.settings
        secret = settings.session_secret.get_secret_value().encode() or _PROCESS_SECRET
        found = _accounts[store] = store.staff_accounts(secret, settings.session_max_age)
    return found


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and request.method == "GET"


async def require_staff(request: Request) -> StaffSession:
    """The logged-in staff member, or a redirect to the login page."""
    token = request.cookies.get(SESSION_COOKIE)
    accounts = accounts_for(services_of(request))
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
