"""Rendering staff pages in French or Arabic (right-to-left), from templates and text tables.

The language comes from ``?lang=`` (remembered in a cookie), else the
browser's ``Accept-Language``, else French. Texts live in JSON tables beside
each package's templates, one entry per language, never in code paths.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.lib.bidi import install as install_bidi

LANGUAGES = ("fr", "ar")
LANG_COOKIE = "intake_lang"
STAFF_TEMPLATES = Path(__file__).with_name("templates")
STAFF_TEXTS = Path(__file__).with_name("texts.json")


@lru_cache(maxsize=8)
def load_texts(*paths: Path) -> dict[str, dict[str, str]]:
    """Merge the text tables in ``paths`` (later ones add keys), per language."""
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for path in paths:
        table = json.loads(path.read_text(encoding="utf-8"))
        for lang in LANGUAGES:
            merged[lang].update(table[lang])
    return merged


def page_language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "ar" if accept.startswith("ar") else "fr"


class Pages:
    """Templates from ``folders`` (first wins) plus the staff base template."""

    def __init__(self, folders: tuple[Path, ...] = (), texts: tuple[Path, ...] = ()) -> None:
        # ``ltr`` and ``bidi``: references, dates and numbers read left to right in Arabic.
        self.env = install_bidi(
            Environment(
                loader=FileSystemLoader([*folders, STAFF_TEMPLATES]),
                autoescape=select_autoescape(["html"]),
            )
        )
        self.texts = (STAFF_TEXTS, *texts)

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        lang = page_language(request)
        body = self.env.get_template(name).render(
            lang=lang, t=load_texts(*self.texts)[lang], **context
        )
        response = HTMLResponse(body, status_code=status)
        # The content security policy and framing rules: gateway.lib.http.security, for every page.
        response.headers["Cache-Control"] = "no-store"
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return response

    def texts_for(self, request: Request) -> dict[str, str]:
        return load_texts(*self.texts)[page_language(request)]
