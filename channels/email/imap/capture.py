"""Fetched IMAP messages -> captures: what the sync and the backfill both do.

folder -> ``Mailbox.fetch`` (``BODY.PEEK[]`` + INTERNALDATE) -> **by_size**
groups -> **capture_fetched** (``staged.mail_capture`` each, one
``captures.capture_many`` group commit per group: the bytes, the INTERNALDATE
as the receipt time, the folder, UID and UIDVALIDITY; nothing parsed) -> the
caller acknowledges (the sync MOVEs; the backfill moves nothing) ... a
normalizer runner makes the complaints.

One key for every way a mail arrives (the bytes' hash): a mail the poller
captured and a backfill fetches again finds the poller's capture and its
reference, whether a runner normalized it already or not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from channels.email.imap.mailbox import FETCH_BYTES, FetchedMessage, Mailbox
from channels.email.imap.outcomes import OUR_FAILURES
from channels.email.staged import mail_capture
from gateway.lib.services import Services
from gateway.store.captures import Captured

log = logging.getLogger("intake.imap")

# Per fetched message, in UID order: its capture, or None when it failed on its own.
Outcomes = list[tuple[int, Captured | None]]


def source_ids(mailbox: Mailbox, message: FetchedMessage) -> dict[str, Any]:
    """Where the mail was: the capture's (then the evidence's) IMAP identifiers."""
    return {
        "imap_uidvalidity": mailbox.uidvalidity,
        "imap_uid": message.uid,
        "imap_folder": mailbox.folder,
    }


def capture_fetched(
    services: Services, mailbox: Mailbox, messages: Sequence[FetchedMessage]
) -> tuple[Outcomes, Exception | None]:
    """Capture the messages in one group commit; nothing is parsed here.

    Outcomes in UID order, ``None`` for a mail whose capture failed on
    something particular to it (left in place). Our own failure
    (``OUR_FAILURES``: the store down) ends the list at that mail and is
    returned: nothing from it on may be acknowledged, though captures
    after it may be committed already (the next pass finds them by their
    dedup key, the bytes' hash, and answers the same reference).
    """
    committed = services.store.captures.capture_many(
        [
            mail_capture(message.raw, message.internal_date, source_ids(mailbox, message))
            for message in messages
        ]
    )
    outcomes: Outcomes = []
    for message, outcome in zip(messages, committed, strict=True):
        if isinstance(outcome, OUR_FAILURES):
            return outcomes, outcome
        if isinstance(outcome, Exception):
            log.error(
                "UID %s in %s could not be captured; it is left in place",
                message.uid,
                mailbox.folder,
                exc_info=outcome,
            )
            outcomes.append((message.uid, None))
            continue
        log.info(
            "UID %s: %s %s",
            message.uid,
            "captured as" if outcome.created else "already captured as",
            outcome.reference,
        )
        outcomes.append((message.uid, outcome))
    return outcomes, None


def by_size(messages: Iterable[FetchedMessage]) -> Iterator[list[FetchedMessage]]:
    """Messages in groups of at most ``FETCH_BYTES``: one group commit each, bounded memory."""
    group: list[FetchedMessage] = []
    total = 0
    for message in messages:
        if group and total + len(message.raw) > FETCH_BYTES:
            yield group
            group, total = [], 0
        group.append(message)
        total += len(message.raw)
    if group:
        yield group
