"""The public complaint web form ("Écrivez-nous via ce formulaire").

browser -> **channels.webform** (page, guards, validation) -> ``hand_off``
(evidence + complaint + outbox, one commit) -> queue with ``channel: webform``
and the language of the text.

- ``routes``: the HTTP edge (``/``, ``/ar/``, ``/en/``, ``/es/``, assets).
- ``form``: the submission, its checks (a table), the complaint draft.
- ``attachments``: type, size, page and pixel checks on uploaded files.
- ``guard``, ``ratelimit``: CSRF token, honeypot, per-address hourly limit.
- ``i18n``, ``pages``, ``texts/``, ``templates/``, ``static/``: what the
  customer reads, in French, Arabic (right to left), English and Spanish.
"""

from __future__ import annotations

from channels.webform.replay import replay_webform
from channels.webform.routes import body_limits, build_router
from gateway.lib.component import Component

ADAPTER = Component(
    name="webform",
    routes=build_router,
    body_limits=body_limits,
    replay=replay_webform,
)
