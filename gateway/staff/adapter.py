"""The staff component (``gateway.components``): login/logout routes and ``intake users``."""

from __future__ import annotations

from gateway.lib.component import Component
from gateway.staff.cli import users
from gateway.staff.web import build_router

ADAPTER = Component(name="staff", routes=build_router, commands=(users,))
