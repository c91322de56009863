"""The staff component (``gateway.components``): login, logout and password pages.

Commands: ``intake staff`` (``intake users``: its old name, hidden).
"""

from __future__ import annotations

from gateway.lib.component import Component
from gateway.staff.cli import staff, users
from gateway.staff.web import build_router

ADAPTER = Component(name="staff", routes=build_router, commands=(staff, users))
