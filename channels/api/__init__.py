"""The partner API: complaints submitted as JSON by systems that already hold them.

- ``routes``: the HTTP edge (``/v1/complaints``).
- ``intake``: a body -> draft -> ``RawInput`` (shared by the edge and the replay).
- ``replay``: a quarantined body validated again. ``cli``: ``intake api-key``.
"""

from __future__ import annotations

from channels.api.cli import api_key
from channels.api.replay import replay_api
from channels.api.routes import build_router
from gateway.lib.component import Component

ADAPTER = Component(name="api", routes=build_router, replay=replay_api, commands=(api_key,))
