"""Acknowledgements of receipt (accusés de réception): the first real downstream consumer.

relay -> ``complaints.acks`` queue -> **worker** -> ``Acknowledger`` (policy,
row per complaint, sender) -> e-mail through the SMTP relay, SMS or
WhatsApp through Twilio, or a PDF letter for the mailroom -> ``ack.sent`` /
``ack.failed`` events on the events queue.

Kept under ``channels/`` rather than ``router/``: it is the outbound half of
the customer-facing channels, plugged into the gateway through the same
``Component`` table (a worker, shell commands, HTTP routes for the
letters), and ``router/`` stays the publishing machinery only.

- ``worker``: the queue loop (manual acks, requeue with backoff).
- ``acknowledger``: one complaint, idempotently.
- ``policy``: whether and how (tables). ``texts``: in which languages.
- ``mail``, ``sms``, ``letter``: the senders. ``store``: the table.
- ``cli``: ``intake ack-worker``, ``intake ack report``, ``intake ack retry``,
  ``intake ack letters``.
- ``routes``: ``/v1/acks/letters`` for the mailroom.
"""

from __future__ import annotations

from gateway.acks.cli import COMMANDS
from gateway.acks.routes import build_router
from gateway.acks.worker import run_worker
from gateway.lib.component import Component

ADAPTER = Component(name="acks", routes=build_router, worker=run_worker, commands=COMMANDS)
