"""The partner API: complaints submitted as JSON by systems that already hold them.

- ``routes``: the HTTP edge (``/v1/complaints``).
- ``intake``: a body -> draft -> ``RawInput`` (shared by the edge and the replay).
- ``replay``: a quarantined body validated again. ``cli``: ``intake api-key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.api.cli import api_key
from channels.api.routes import build_router
from gateway.lib.component import Component
from gateway.lib.services import Services

if TYPE_CHECKING:
    from gateway.store.quarantine import QuarantineItem, ReplayResult


def _replay(services: Services, item: QuarantineItem) -> ReplayResult:
    from channels.api.replay import replay_api

    return replay_api(services, item)


ADAPTER = Component(name="api", routes=build_router, replay=_replay, commands=(api_key,))
