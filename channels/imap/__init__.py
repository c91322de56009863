"""The IMAP channel: read the complaints mailbox, commit each mail, then move it.

IMAP inbox -> **channels.imap** (poller: fetch ``BODY.PEEK[]`` + INTERNALDATE)
-> ``channels.mail.ingest_mail`` (evidence + complaint + outbox, one commit)
-> MOVE to the processed folder (or the quarantine folder) -> checkpoint.

Modules: ``connection`` (TLS, login, XOAUTH2), ``mailbox`` (IMAP commands on
a folder), ``sync`` (one pass over the inbox), ``waiting`` (IDLE or poll),
``poller`` (the long-running loop with backoff), ``backfill`` and ``cli``.
The worker is imported lazily so ``intake`` starts fast.
"""

from __future__ import annotations

import threading

from channels.base import ChannelAdapter, lazy_replayer
from channels.imap.cli import imap_group
from gateway.services import Services


def _worker(services: Services, stop: threading.Event) -> None:
    from channels.imap.poller import run_poller

    run_poller(services, stop)


ADAPTER = ChannelAdapter(
    name="imap",
    worker=_worker,
    enabled=lambda services: bool(services.settings.imap_host),
    commands=(imap_group,),
    # Quarantined e-mail (IMAP, SMTP or imports) is replayed through the same parser.
    replay=lazy_replayer("gateway.ops.replayers", "replay_email"),
    replays=("email",),
)
