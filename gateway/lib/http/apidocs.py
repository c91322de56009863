"""The API documentation page (``/docs``): Swagger UI served from our own origin.

browser -> ``GET /docs`` (a static page, no inline code) -> ``/docs/static/``
(Swagger UI 5's files from the installed ``fastapi-offline`` package, and
``docs.js``, which starts it on ``/openapi.json``).

FastAPI's own pages load Swagger UI and ReDoc from a CDN, with an inline
bootstrap script: a compromised CDN file would run where partners paste
their API key ("Authorize"). Here nothing comes from elsewhere, so the page
is under the same strict policy as every other page
(``gateway.lib.http.security.PAGE_POLICY``). ReDoc is not served: it
injects its styles inline, which that policy refuses. ``INTAKE_API_DOCS=false``
turns ``/docs`` off.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from gateway.lib.http.errors import ApiError

HERE = Path(__file__).parent / "docs"
PAGE = "docs.html"
# Swagger UI 5 (OpenAPI 3.1, which FastAPI writes), as the package ships it.
SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
# The files the page may load, by name: nothing else of either folder is served.
STATIC: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER_UI, "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_UI, "text/javascript"),
    "docs.css": (HERE, "text/css"),
    "docs.js": (HERE, "text/javascript"),
}


def build_docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs_page() -> Response:
        return FileResponse(HERE / PAGE, media_type="text/html; charset=utf-8")

    @router.get("/docs/static/{name}")
    async def docs_static(name: str) -> Response:
        found = STATIC.get(name)
        if found is None:
            raise ApiError(404, "not_found", f"no file {name}")
        folder, media_type = found
        return FileResponse(folder / name, media_type=media_type)

    return router
