"""The operations component: ``/ops/`` and its pages (to sort, calls to return, a complaint),
and its commands (quarantine, dead letters, evidence, register, retention, personal data,
customer keys)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.lib.component import Component
from gateway.lib.services import Services
from gateway.ops.cli import COMMANDS
from gateway.ops.customer_keys import COMMANDS as CUSTOMER_COMMANDS
from gateway.ops.evidence import COMMANDS as EVIDENCE_COMMANDS
from gateway.ops.privacy import COMMANDS as PRIVACY_COMMANDS
from gateway.ops.register import COMMANDS as REGISTER_COMMANDS


def _routes(services: Services) -> APIRouter:
    # Imported when the web app is built, not when ``intake`` starts.
    from gateway.ops.call_backs import build_router as build_call_back_router
    from gateway.ops.complaints import build_router as build_complaint_router
    from gateway.ops.register_page import build_router as build_register_router
    from gateway.ops.triage import build_router as build_triage_router
    from gateway.ops.web import build_router

    # Beside the /ops router, not inside it: a route's own path (which the staff
    # roles are read from, ``gateway.lib.http.auth.roles_for``) keeps its /ops prefix.
    routes = APIRouter()
    routes.include_router(build_router(services))
    routes.include_router(build_triage_router(services))
    routes.include_router(build_call_back_router(services))
    routes.include_router(build_complaint_router(services))
    routes.include_router(build_register_router(services))
    return routes


ADAPTER = Component(
    name="ops",
    routes=_routes,
    commands=COMMANDS
    + EVIDENCE_COMMANDS
    + REGISTER_COMMANDS
    + PRIVACY_COMMANDS
    + CUSTOMER_COMMANDS,
)
