"""Credentials checked before a body is read, on the upload routes (S11).

request --> **CredentialsFirst** (``Authorization: Bearer KEY`` or the staff
session cookie, from the headers alone) --> the route, whose dependencies
(``require_client``, ``require_csrf``) check again and parse the body.

FastAPI parses a multipart body (``files: list[UploadFile]``) before it runs
a route's dependencies, so without this an anonymous client could make the
gateway read and spool up to the upload cap before its ``401``. Here a
request to a listed path without valid credentials is answered ``401`` at
once, its body unread (the server then closes the connection); valid
credentials without the right (the key's scope, the member's role) get their
``403`` the same way. Paths come from the components
(``Component.credentials_first``): path -> ``client`` (a partner API key),
``client:SCOPE`` (a key with that scope) or ``staff`` (a staff session whose
role ``ROLE_RULES`` allows on the path).
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.lib.http.auth import SESSION_COOKIE, accounts_for, missing_scope, roles_for
from gateway.lib.http.errors import error_response
from gateway.lib.services import Services
from gateway.store.apikeys import ApiClient

CLIENT = "client"
STAFF = "staff"


class CredentialsFirst:
    """ASGI middleware: ``401`` before the body, for the listed paths' state-changing methods."""

    def __init__(self, app: ASGIApp, services: Services, paths: Mapping[str, str]) -> None:
        self.app = app
        self.services = services
        self.paths = dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if kind is None or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {key.lower(): value for key, value in scope.get("headers") or []}
        # Connection: close, so the server need not read the body it was sent.
        closing = {"Connection": "close"}
        if kind.startswith(CLIENT):
            needed = kind.partition(":")[2]
            client = await self._client(headers)
            if client is None:
                answer = error_response(
                    401,
                    "unauthorized",
                    "unknown or missing API key",
                    headers={"WWW-Authenticate": "Bearer", **closing},
                )
                await answer(scope, receive, send)
                return
            if needed and not client.has(needed):
                refusal = missing_scope(needed)
                answer = error_response(
                    403, refusal.code, refusal.message, headers=closing, details=refusal.details
                )
                await answer(scope, receive, send)
                return
        else:
            role = await self._staff(headers)
            if role is None:
                answer = error_response(
                    401, "unauthorized", "staff login required", headers=closing
                )
                await answer(scope, receive, send)
                return
            if role not in (roles_for(scope.get("path", "")) or ()):
                answer = error_response(
                    403, "forbidden", "your role may not use this page", headers=closing
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _client(self, headers: Mapping[bytes, bytes]) -> ApiClient | None:
        scheme, _, key = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        api_keys = self.services.store.api_keys
        return await run_in_threadpool(api_keys.authenticate, key.strip())

    async def _staff(self, headers: Mapping[bytes, bytes]) -> str | None:
        """The role of the session the cookie names; None: no valid session."""
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:  # a malformed cookie header is no session
            return None
        morsel = cookies.get(SESSION_COOKIE)
        if morsel is None or not morsel.value:
            return None
        accounts = accounts_for(self.services)
        session = await run_in_threadpool(accounts.session_for, morsel.value)
        return None if session is None else session.user.role
