"""The staff entry in the channel table: login/logout routes and ``intake users``."""

from __future__ import annotations

from channels.base import ChannelAdapter
from gateway.staff.cli import users
from gateway.staff.web import build_router

ADAPTER = ChannelAdapter(name="staff", routes=build_router, commands=(users,))
