"""HTTP errors: one JSON shape, one place that maps exceptions to status codes.

``ApiError`` is answered as it says (401, 403, 404, 409...); the sender's
fault (``InputRejected``) is 422 with its code and field; ours
(``OurFailure``) is 503 with ``Retry-After``; anything else is logged and 503.

Every error body is ``{"error": {"code": "...", "message": "...", "field": ...}}``:
a machine code a client can branch on, a sentence a person can read, and
for validation errors the dotted path of the field at fault. Our own
failures (store down) are ``503`` with ``Retry-After`` and say nothing of
the internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.store import StoreUnavailable
from normalizer.errors import InputRejected, OurFailure

log = logging.getLogger("intake.http")

RETRY_AFTER_SECONDS = "5"
# The body limit of a route that reads its body itself, under its own cap, and
# answers an oversized one in its own terms (the web form: a page in the
# customer's language that keeps what they typed). ``BodySizeLimit`` leaves that
# exact path alone, and nothing below it.
OWN_LIMIT = 0


class ApiError(Exception):
    """An error answered to the client as is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        # More machine-readable members of the error (``scope`` of a 403 missing_scope).
        self.details = details or {}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    details: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {**(details or {}), "code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "customer", "phone")`` -> ``customer.phone``."""
    parts = [str(part) for part in location if part not in ("body",)]
    return ".".join(parts) or "body"


def describe_validation(errors: list[Any]) -> tuple[str, str, str]:
    """(code, message, field) for the first validation error."""
    first = errors[0]
    kind = first.get("type", "")
    if kind in ("json_invalid", "json_type"):
        return "invalid_json", f"request body is not valid JSON: {first.get('msg')}", "body"
    path = field_path(first.get("loc", ()))
    return "invalid_field", f"{path}: {first.get('msg')}", path


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status, exc.code, exc.message, exc.field, exc.headers, details=exc.details
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, field = describe_validation(list(exc.errors()))
        return error_response(422, code, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
        }.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(InputRejected)
    async def _rejected(_request: Request, exc: InputRejected) -> JSONResponse:
        return error_response(422, exc.code, str(exc), exc.field)

    @app.exception_handler(OurFailure)
    async def _ours(_request: Request, exc: OurFailure) -> JSONResponse:
        if isinstance(exc, StoreUnavailable):
            message = "the complaint was not recorded; please retry shortly"
        else:
            log.exception("request failed on our side: %s", type(exc).__name__)
            message = "the request could not be completed; please retry shortly"
        return error_response(
            503, "temporarily_unavailable", message, headers={"Retry-After": RETRY_AFTER_SECONDS}
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error: %s", type(exc).__name__)
        return error_response(
            503,
            "temporarily_unavailable",
            "the request could not be completed; please retry shortly",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes with 413, before the app reads them all.

    Checks ``Content-Length`` first and counts streamed (chunked) bodies as
    they arrive, so a client cannot make us buffer more than the limit.
    A larger limit covers every path under its prefix (``/v1/letters`` and
    what lies below); ``OWN_LIMIT`` only its exact path, which is passed
    through untouched. A route added later under the form's ``/fr/`` is
    still guarded here.
    """

    def __init__(
        self, app: ASGIApp, limit: int, overrides: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = limit
        # Longest prefix first, so /v1/letters wins over /v1.
        self.overrides = sorted((overrides or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path == prefix or (limit != OWN_LIMIT and path.startswith(prefix)):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        if limit == OWN_LIMIT:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the app, so its handlers answer the 413.
                    raise StarletteHTTPException(413, _too_large(limit))
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, "body_too_large", _too_large(limit))(scope, receive, send)


def _too_large(limit: int) -> str:
    return f"request body is larger than {limit} bytes"
