"""Who is calling: the dependencies routes use to know it.

- ``require_client``: a partner system, by ``Authorization: Bearer KEY``;
  ``require_scope(SCOPE)``: one whose key was given that scope (403 naming
  it otherwise).
- ``require_staff`` / ``require_csrf``: a logged-in staff member (the
  mailroom, operators), and a valid CSRF token on a state-changing request.
  Both also check the member's role against ``ROLE_RULES``, by the matched
  route's path: a staff route with no rule is refused to everyone (a test
  enumerates the app's routes and checks each has one).
- ``audit``: one line of the staff audit trail for the request's member.

Every channel and page takes these from here; the login pages themselves
are ``gateway.staff``'s.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import weakref
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.lib.http.errors import ApiError
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.store.apikeys import ApiClient
from gateway.store.staff import ADMIN, MAILROOM, OPERATOR, ROLES, StaffAccounts, StaffSession
from gateway.store.staff_logins import LoginGuard, LoginPolicy

SESSION_COOKIE = "intake_staff"
CSRF_HEADER = "x-csrf-token"
# Used when INTAKE_SESSION_SECRET is empty: sessions end when the process restarts.
_PROCESS_SECRET = secrets.token_bytes(32)
_accounts: weakref.WeakKeyDictionary[object, StaffAccounts] = weakref.WeakKeyDictionary()
_guards: weakref.WeakKeyDictionary[object, LoginGuard] = weakref.WeakKeyDictionary()

# Which roles may use the staff routes under each path (the longest prefix wins).
# mailroom: the letters pages; operator: the operator page and its replays;
# admin: everything. Every member may log out and change their own password.
ROLE_RULES: dict[str, frozenset[str]] = {
    "/letters/": frozenset({MAILROOM, ADMIN}),
    "/ops/": frozenset({OPERATOR, ADMIN}),
    "/staff/": frozenset(ROLES),
    "/staff/users": frozenset({ADMIN}),
}


def roles_for(path: str) -> frozenset[str] | None:
    """The roles allowed on the route ``path`` (its template); None: no rule, nobody."""
    matches = [prefix for prefix in ROLE_RULES if path.startswith(prefix)]
    return ROLE_RULES[max(matches, key=len)] if matches else None


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
    keys = services_of(request).store.api_keys
    # Most requests come with a key accepted a moment ago: no thread hop for them.
    client = keys.recently_accepted(credentials.credentials) or await run_in_threadpool(
        keys.authenticate, credentials.credentials
    )
    if client is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=challenge)
    request.state.client = client
    return client


def require_scope(scope: str) -> Callable[..., Awaitable[ApiClient]]:
    """A dependency: ``require_client`` whose key has ``scope``, or 403 naming the scope."""

    async def scoped(client: Annotated[ApiClient, Depends(require_client)]) -> ApiClient:
        if not client.has(scope):
            raise missing_scope(scope)
        return client

    return scoped


def missing_scope(scope: str) -> ApiError:
    """The 403 of a key that lacks ``scope`` (an operator grants it: ``intake api-key grant``)."""
    return ApiError(
        403,
        "missing_scope",
        f"this API key does not have the scope {scope}; "
        f"ask the operator to grant it (intake api-key grant NAME --scope {scope})",
        details={"scope": scope},
    )


def accounts_for(services: Services) -> StaffAccounts:
    """The process's ``StaffAccounts`` for this store (one per store)."""
    store = services.store
    found = _accounts.get(store)
    if found is None:
        settings = services.settings
        secret = settings.session_secret.get_secret_value().encode() or _PROCESS_SECRET
        found = _accounts[store] = store.staff_accounts(
            secret, settings.session_max_age, settings.staff_idle_timeout
        )
    return found


def guard_for(services: Services) -> LoginGuard:
    """The process's login throttle and form tokens for this store."""
    store = services.store
    found = _guards.get(store)
    if found is None:
        settings = services.settings
        secret = settings.session_secret.get_secret_value().encode() or _PROCESS_SECRET
        policy = LoginPolicy(
            account_free=settings.staff_login_free_attempts,
            address_free=settings.staff_login_address_free_attempts,
            backoff=settings.staff_login_backoff_seconds,
            lockout=settings.staff_login_lockout_seconds,
        )
        found = _guards[store] = store.login_guard(secret, policy)
    return found


def client_address(request: Request) -> str:
    """The caller's address (behind a proxy: the one uvicorn took from X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


# An IPv6 customer line is a /64 (RFC 6177 gives sites a /48 at most, ISPs a
# /56 or /64 per subscriber): any address inside it is the same client.
IPV6_CLIENT_PREFIX = 64


def limited_client(request: Request) -> str:
    """The client that rate limits count: the address, or its /64 for IPv6.

    Counting one IPv6 address would let a client walk its own /64 (2^64
    addresses) past any limit.
    """
    address = client_address(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False))


def masked_address(address: str) -> str:
    """The address without its last part, for logs and the audit trail: ``192.0.2.x``."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv4Address):
        return ".".join(address.split(".")[:3]) + ".x"
    return ":".join(parsed.exploded.split(":")[:4]) + "::x"


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
    route = request.scope.get("route")
    allowed = roles_for(str(getattr(route, "path", request.url.path)))
    if allowed is None or session.user.role not in allowed:
        raise ApiError(403, "forbidden", _pages.texts_for(request)["forbidden"])
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


async def audit(
    request: Request,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Record ``action`` by the request's staff member in the audit trail; the entry's id."""
    staff: StaffSession = request.state.staff
    return int(
        await run_in_threadpool(
            lambda: services_of(request).store.staff_audit.record(
                staff.user.name,
                action,
                target,
                detail,
                role=staff.user.role,
                address=masked_address(client_address(request)),
                data=data,
            )
        )
    )
