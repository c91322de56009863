"""The HTTP application: partner API, channel webhooks, health and metrics.

``create_app`` mounts the routes of every channel in ``gateway.components.COMPONENTS``
plus the operator endpoints, with one error format for all of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from channels.api.intake import ComplaintIn
from config.settings import Settings
from gateway import health
from gateway.components import COMPONENTS
from gateway.lib.http.apidocs import build_docs_router
from gateway.lib.http.credentials import CredentialsFirst
from gateway.lib.http.errors import BodySizeLimit, install_error_handlers
from gateway.lib.http.security import SecurityHeaders
from gateway.lib.services import Services

TITLE = "Cash Plus complaints intake gateway"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title=TITLE,
        version="1.0",
        description=(
            "Front door of the Cash Plus Service Réclamations: every complaint is stored as "
            "evidence, normalized and published on the `complaints` exchange."
        ),
        # FastAPI's pages load Swagger UI and ReDoc from a CDN: ours is self-hosted.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.build_router(services))
    if services.settings.api_docs:
        app.include_router(build_docs_router())
    for channel in COMPONENTS:
        if channel.routes is not None:
            app.include_router(channel.routes(services))
    app.add_middleware(
        CredentialsFirst,
        services=services,
        paths={
            path: kind for channel in COMPONENTS for path, kind in channel.credentials_first.items()
        },
    )
    app.add_middleware(
        BodySizeLimit,
        limit=services.settings.max_request_bytes,
        overrides=route_body_limits(services.settings),
    )
    app.add_middleware(
        SecurityHeaders, https=services.settings.public_base_url.startswith("https:")
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def route_body_limits(settings: Settings) -> dict[str, int]:
    """Body limits the channels ask for on their upload routes (larger, or ``OWN_LIMIT``)."""
    limits: dict[str, int] = {}
    for channel in COMPONENTS:
        if channel.body_limits is not None:
            limits.update(channel.body_limits(settings))
    return limits


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI with the request models that handlers parse themselves (to keep the raw body)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    model = ComplaintIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(model.pop("$defs", {}))
    schemas["ComplaintIn"] = model
    app.openapi_schema = document
    return document
