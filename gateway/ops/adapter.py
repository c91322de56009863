"""The operations component: ``/ops/`` and its commands (quarantine, dead letters, evidence,
register, retention, personal data)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.lib.component import Component
from gateway.lib.services import Services
from gateway.ops.cli import COMMANDS
from gateway.ops.evidence import COMMANDS as EVIDENCE_COMMANDS
from gateway.ops.privacy import COMMANDS as PRIVACY_COMMANDS
from gateway.ops.register import COMMANDS as REGISTER_COMMANDS


def _routes(services: Services) -> APIRouter:
    # Imported when the web app is built, not when ``intake`` starts.
    from gateway.ops.web import build_router

    return build_router(services)


ADAPTER = Component(
    name="ops",
    routes=_routes,
    commands=COMMANDS + EVIDENCE_COMMANDS + REGISTER_COMMANDS + PRIVACY_COMMANDS,
)
