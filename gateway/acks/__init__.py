"""Acknowledgements of receipt (accusés de réception): the first downstream consumer of the queue.

relay -> ``complaints.acks`` queue -> **worker** -> ``Acknowledger`` (policy,
row per complaint, sender) -> e-mail through the SMTP relay, SMS or
WhatsApp through Twilio, or a PDF letter for the mailroom -> ``ack.sent`` /
``ack.failed`` events on the events queue.

Not a channel: channels bring complaints in, this consumes what intake
published, beside intake rather than in it. It is plugged into the gateway
through the same ``Component`` table (a worker, shell commands, HTTP routes
for the mailroom's letters), above the channels and ``gateway.lib``;
``router/`` stays the publishing machinery only.

- ``worker``: the queue loop (manual acks, requeue with backoff).
- ``acknowledger``: one complaint, idempotently.
- ``policy``: whether and how (tables). ``texts``: in which languages.
- ``senders``: the ``Sender`` interface, and ``mail``, ``sms``, ``letter``
  (the PDF); they know nothing of the acknowledger or the mailroom.
- ``mailroom``: the letters waiting to be posted (list, print, mark posted).
- The table is the store's: ``Store.acks`` (``gateway.store.acks``).
- ``cli``: ``intake ack-worker``, ``intake ack report``, ``intake ack retry``,
  ``intake ack letters``, ``intake ack texts``.
- ``deliveries``: Twilio's status callbacks (``/twilio/acks/status``); an
  undelivered SMS or WhatsApp message (or a bounced e-mail, found by the
  e-mail channel) is sent again by the next method.
- ``routes``: ``/v1/acks/letters`` for partner scripts; ``pages``: the
  staff page ``/letters/acks`` (``templates/acks.html``, ``texts.json``).
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.acks import deliveries, pages, routes
from gateway.acks.cli import COMMANDS
from gateway.acks.worker import run_worker
from gateway.lib.component import Component
from gateway.lib.services import Services


def build_routes(services: Services) -> APIRouter:
    """The partner API's letter routes, the mailroom's staff page, Twilio's status callbacks."""
    router = APIRouter()
    router.include_router(routes.build_router(services))
    router.include_router(pages.build_router(services))
    router.include_router(deliveries.build_router(services))
    return router


ADAPTER = Component(name="acks", routes=build_routes, worker=run_worker, commands=COMMANDS)
