"""The partner API: complaints submitted as JSON by systems that already hold them.

- ``routes``: the HTTP edge (``/v1/complaints``): validates, then captures.
- ``intake``: a body -> draft -> ``RawInput`` (shared by the edge, the runner and the replay).
- ``staged``: the edge's capture, and the normalizer runners' step for it.
- ``replay``: a quarantined body validated again. ``cli``: ``intake api-key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from channels.api.cli import api_key
from channels.api.replay import replay_api
from channels.api.routes import build_router
from gateway.lib.component import Component
from gateway.lib.services import Services

if TYPE_CHECKING:
    from gateway.store.captures import Captured, Finished


def _normalize_api(services: Services, batch: Sequence[Captured]) -> list[Finished | Exception]:
    from channels.api.staged import normalize_api_captures

    return normalize_api_captures(services, batch)


ADAPTER = Component(
    name="api",
    routes=build_router,
    replay=replay_api,
    commands=(api_key,),
    # What the edge captured is recorded by the normalizer runners.
    normalize=_normalize_api,
    normalizes=("api",),
)
