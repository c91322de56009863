"""The host's table: every component ``intake`` runs, channels first.

``gateway.app`` mounts their routes, ``gateway.runner`` starts their
workers and ``gateway.cli`` adds their commands. Beside the channels
(``channels.CHANNELS``) come the services that run beside intake:
acknowledgements (the first consumer of the queue), the operator pages and
staff accounts, and the language tools.
"""

from __future__ import annotations

from channels import CHANNELS
from gateway.lib.component import ComponentTable, Entry

COMPONENTS = ComponentTable(
    *CHANNELS.entries,
    Entry(
        "acks",
        "gateway.acks",
        {
            "ack-worker": "Acknowledge complaints from the complaints.acks queue until SIGINT "
            "or SIGTERM.",
            "ack": "Acknowledgements of receipt (accusés de réception).",
        },
    ),
    Entry(
        "cases",
        "gateway.cases",
        {
            "case-worker": "Record status reports from the complaints.status queue and send "
            "notices until SIGINT or SIGTERM.",
        },
    ),
    Entry(
        "ops",
        "gateway.ops.adapter",
        {
            "quarantine": "Inputs refused at a channel's edge (kept with the reason), and their "
            "replay.",
            "dead-letters": "The complaints.dead queue: messages a consumer rejected, and their "
            "replay.",
            "evidence": "The append-only evidence log: check it, publish its daily root.",
            "register": "The monthly complaints register (Bank Al-Maghrib circular 10/W/16).",
            "retention": "The retention policy (law 09-08): remove what is past it.",
            "personal-data": "A customer's access (export) and erasure requests, by phone or "
            "e-mail.",
            "customers": "One customer across channels: pseudonymous keys of phones and e-mails.",
        },
    ),
    Entry(
        "staff",
        "gateway.staff.adapter",
        {
            "staff": "Staff accounts (mailroom, operator, admin) and the audit trail of their "
            "actions.",
            # An empty help: a hidden command (the old name of intake staff, for one release).
            "users": "",
        },
    ),
    Entry(
        "langid",
        "gateway.langid",
        {
            "detect-language": "Print the language of TEXT as JSON; without TEXT, one JSON line "
            "per stdin line.",
            "langid-eval": "Accuracy per label, macro accuracy, confusions and speed on FILE, "
            "next to langdetect.",
        },
    ),
)
