"""Links the gateway gives out (``status_url``, ``Location``), from ``INTAKE_PUBLIC_BASE_URL``.

Never from the request's ``Host`` or ``X-Forwarded-*``: a caller could make
us hand out a link to any host it names, and partners store and follow
these links. With no public URL set, a link is the path alone (relative to
wherever the caller reached us), as the Twilio signature check reads the
same setting.
"""

from __future__ import annotations

from fastapi import Request

from config.settings import Settings


def public_url(settings: Settings, path: str) -> str:
    """``path`` under the public base URL, or ``path`` itself when none is set."""
    base = settings.public_base_url.strip().rstrip("/")
    return f"{base}{path}" if base else path


def link_for(request: Request, settings: Settings, name: str, **params: str) -> str:
    """The public link to the route ``name`` with ``params``."""
    return public_url(settings, str(request.app.url_path_for(name, **params)))
