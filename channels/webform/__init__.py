"""The public complaint web form ("Écrivez-nous via ce formulaire").

browser -> **channels.webform** (page, guards, validation) -> capture (the
raw post, its reference and deadlines, one commit) -> confirmation page ...
a normalizer runner -> ``hand_off_many`` (evidence + complaint + outbox, one
commit) -> queue with ``channel: webform`` and the language of the text.

- ``routes``: the HTTP edge (``/``, ``/ar/``, ``/en/``, ``/es/``, assets).
- ``staged``: the edge's capture, and the normalizer runners' step for it.
- ``form``: the submission, its checks (a table), the complaint draft.
- ``intake``: a post -> ``RawInput`` (dedup key); a stored post read again.
- ``attachments``: type, size, page and pixel checks on uploaded files.
- ``guard``: CSRF token, honeypot, proof of work, client keys.
- ``i18n``, ``pages``, ``texts/``, ``templates/``, ``static/``: what the
  customer reads, in French, Arabic (right to left), English and Spanish.
- ``status``: the customer's own view of a complaint (by reference).
- ``replay``: a quarantined post checked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from channels.webform.replay import replay_webform
from channels.webform.routes import body_limits, build_router
from gateway.lib.component import Component
from gateway.lib.services import Services

if TYPE_CHECKING:
    from gateway.store.captures import Captured, Finished


def _normalize_webform(services: Services, batch: Sequence[Captured]) -> list[Finished | Exception]:
    from channels.webform.staged import normalize_webform_captures

    return normalize_webform_captures(services, batch)


ADAPTER = Component(
    name="webform",
    routes=build_router,
    body_limits=body_limits,
    replay=replay_webform,
    # What the edge captured is recorded by the normalizer runners.
    normalize=_normalize_webform,
    normalizes=("webform",),
)
