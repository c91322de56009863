"""Case handling's side of a complaint: status reports coming back, and the notices they cause.

case management --``POST /v1/complaints/{reference}/status`` (``routes``),
or ``ma.cashplus.complaint.status.v1`` on ``complaints.status``
(``worker``)--> ``reports.record`` -> ``Store.cases`` (history, state, a
pending notice for ``extended``) -> the worker's poll sends the notice of a
longer delay through the acknowledgement senders (``notices``), in the
customer's language, by their channel.

Above the acknowledgements in the layers: it reuses their senders, texts
and policy, and they know nothing of it.
"""

from __future__ import annotations

from gateway.cases.cli import COMMANDS
from gateway.cases.routes import build_router
from gateway.cases.worker import run_worker
from gateway.lib.component import Component

ADAPTER = Component(name="cases", routes=build_router, worker=run_worker, commands=COMMANDS)
