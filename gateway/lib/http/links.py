"""Links the gateway gives out (``status_url``, ``Location``), from ``INTAKE_PUBLIC_BASE_URL``.

Never from the request's ``Host`` or ``X-Forwarded-*``: a caller could make
us hand out a link to any host it names, and partners store and follow
these links. With no public URL set, a link is the path alone (relative to
wherever the caller reached us), as the Twilio signature check reads the
same setting.
"""

from __future__ import annotations

import re
import weakref

from fastapi import Request
from starlette.applications import Starlette

from config.settings import Settings

# What a path parameter holds unchanged (a reference, an id): no quoting to think of.
_PLAIN = re.compile(r"[A-Za-z0-9_.-]+")
_templates: weakref.WeakKeyDictionary[Starlette, dict[tuple[str, tuple[str, ...]], str]] = (
    weakref.WeakKeyDictionary()
)


def public_url(settings: Settings, path: str) -> str:
    """``path`` under the public base URL, or ``path`` itself when none is set."""
    base = settings.public_base_url.strip().rstrip("/")
    return f"{base}{path}" if base else path


def link_for(request: Request, settings: Settings, name: str, /, **params: str) -> str:
    """The public link to the route ``name`` with ``params``."""
    return public_url(settings, route_path(request.app, name, **params))


def route_path(app: Starlette, name: str, /, **params: str) -> str:
    """``app.url_path_for``, from a template found once per route and parameter names.

    Finding a route by name walks every router (a miss raises inside each);
    the path of a route does not change while the app runs. Values outside
    ``_PLAIN`` (which a path parameter takes as they are), or holding a
    template's marker, take the long way.
    """
    if not all(_PLAIN.fullmatch(value) and "__" not in value for value in params.values()):
        return str(app.url_path_for(name, **params))
    templates = _templates.setdefault(app, {})
    key = (name, tuple(sorted(params)))
    template = templates.get(key)
    if template is None:
        template = str(app.url_path_for(name, **{param: _mark(param) for param in params}))
        if not all(template.count(_mark(param)) == 1 for param in params):
            return str(app.url_path_for(name, **params))
        templates[key] = template
    for param, value in params.items():
        template = template.replace(_mark(param), value)
    return template


def _mark(param: str) -> str:
    return f"__{param}__"
