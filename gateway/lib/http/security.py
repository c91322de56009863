"""Security headers on every HTTP answer, and one content security policy for every page.

HTTP app -> routes -> **SecurityHeaders** (outermost middleware) -> client.

The pages (public web form, mailroom upload, staff login) load their
scripts and styles from their own static files and carry their texts as
JSON data blocks, so the policy needs no inline script or style. The
policy lives here, in one place, rather than in each page's handler.

- ``Content-Security-Policy`` on HTML answers: ``PAGE_POLICY``, the API
  documentation (``/docs``) included: it is served from our own origin
  (``gateway.lib.http.apidocs``), with no CDN and no inline script.
  Other answers (JSON, PDF, images) get no policy: Chrome's PDF viewer does
  not render under one, and ``nosniff`` keeps them from being read as HTML.
- ``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options``,
  ``Permissions-Policy`` and ``Cross-Origin-Opener-Policy`` on everything.
- ``Strict-Transport-Security`` when ``INTAKE_PUBLIC_BASE_URL`` is https
  (the gateway itself speaks plain HTTP behind the TLS proxy).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
HSTS = "max-age=31536000"

ALWAYS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}


def policy_for(content_type: str) -> str | None:
    """The content security policy of an answer, or None for what is not a page."""
    if not content_type.lower().startswith("text/html"):
        return None
    return PAGE_POLICY


class SecurityHeaders:
    """ASGI middleware: adds the headers above to every HTTP response start."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.always = dict(ALWAYS)
        if https:
            self.always["Strict-Transport-Security"] = HSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.always.items():
                    headers[name] = value
                policy = policy_for(headers.get("content-type", ""))
                if policy is not None:
                    headers["Content-Security-Policy"] = policy
            await send(message)

        await self.app(scope, receive, send_with_headers)
