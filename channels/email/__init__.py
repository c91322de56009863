"""E-mail: the SMTP receiver, the IMAP mailbox, backlog imports, and their replay.

sending MTA --SMTP--> ``smtp`` ---------\\
IMAP inbox --> ``imap`` (poll, IDLE) ----> ``staged`` (capture: bytes + receipt, then answer)
                                             ... a normalizer runner: ``staged`` step --\\
mbox / Maildir --> ``backlog`` -----> **intake** (``read_mail``: parse, dedup, <------/
quarantined e-mail --> ``replay`` --/   draft) -> ``channels.handoff``

- ``intake``: one mail's bytes and receipt time -> a complaint, an
  auto-reply event, or a refusal (``EmailRejected``).
- ``smtp``, ``smtp_policy``: the SMTP edge and who may deliver to it.
- ``staged``: the SMTP and IMAP edges' capture, and the normalizer runners' step for it.
- ``imap/``: the mailbox poller (connection, sync: capture then move, waiting,
  backfill: read-only, straight through ``intake``).
- ``backlog``: mbox and Maildir imports. ``preview``: ``intake normalize``.
- ``replay``: a quarantined e-mail, parsed again. ``cli``: the commands.

Two components, one package: ``SMTP`` and ``IMAP`` are separate processes
(Procfile), and each imports its server only when its worker starts, so
``intake smtp serve`` loads no IMAP code.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from channels.email.cli import IMAP_COMMANDS, SMTP_COMMANDS
from channels.email.replay import replay_email
from gateway.lib.component import Component
from gateway.lib.services import Services

if TYPE_CHECKING:
    from gateway.store.captures import Captured, Finished


def _smtp_worker(services: Services, stop: threading.Event) -> None:
    from channels.email.smtp import serve_smtp

    serve_smtp(services, stop)


def _imap_worker(services: Services, stop: threading.Event) -> None:
    from channels.email.imap.poller import run_poller

    run_poller(services, stop)


def _normalize_mail(services: Services, batch: Sequence[Captured]) -> list[Finished | Exception]:
    from channels.email.staged import normalize_mail_captures

    return normalize_mail_captures(services, batch)


SMTP = Component(
    name="smtp",
    worker=_smtp_worker,
    enabled=lambda services: services.settings.smtp_port is not None,
    commands=SMTP_COMMANDS,
    # What the SMTP edge captured is read by the normalizer runners.
    normalize=_normalize_mail,
    normalizes=("email",),
)
IMAP = Component(
    name="imap",
    worker=_imap_worker,
    enabled=lambda services: bool(services.settings.imap_host),
    commands=IMAP_COMMANDS,
    # Quarantined e-mail (IMAP, SMTP or imports) is replayed through the same parser.
    replay=replay_email,
    replays=("email",),
)
