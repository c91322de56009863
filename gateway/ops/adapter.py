"""The operations entry in the channel table: ``/ops/`` and ``intake quarantine|dead-letters``."""

from __future__ import annotations

from fastapi import APIRouter

from channels.base import ChannelAdapter
from gateway.ops.cli import COMMANDS
from gateway.services import Services


def _routes(services: Services) -> APIRouter:
    # Imported when the web app is built, not when ``intake`` starts.
    from gateway.ops.web import build_router

    return build_router(services)


ADAPTER = ChannelAdapter(name="ops", routes=_routes, commands=COMMANDS)
