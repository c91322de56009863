"""Re-reading a date range of a folder into the store, e.g. after an outage or a restore.

Folder (the inbox, or the processed folder) -> **backfill**: each fetched
batch captured as the poller captures it (``capture.capture_fetched``: the
bytes' hash as the key, the INTERNALDATE as the receipt time, folder, UID and
UIDVALIDITY) -> the runner drained in process
(``staged.settle_mail_captures``) -> complaints, events, quarantine items.

It selects the folder read-only (EXAMINE) and moves or flags nothing: the
poller alone acknowledges messages. Running it twice, or over mail the
poller took, is safe: a mail the poller captured (normalized yet or not) is
found by its capture, and its reference is the complaint's; a mail recorded
before captures existed gets a capture that the runner finds to be a
``repeat`` of its complaint (the complaint's dedup key, Message-ID and
content). The receipt time is each message's INTERNALDATE (IMAP keeps it
through MOVE and COPY).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from imapclient import IMAPClient

from channels.email.imap.capture import by_size, capture_fetched
from channels.email.imap.mailbox import Mailbox
from channels.email.imap.outcomes import Tally
from channels.email.staged import settle_mail_captures
from gateway.lib.services import Services
from gateway.store.captures import Captured

log = logging.getLogger("intake.imap")

Progress = Callable[[int], object]


def open_folder(client: IMAPClient, folder: str) -> Mailbox:
    """``folder`` selected read-only (EXAMINE): nothing we do can change it."""
    return Mailbox(client, folder, readonly=True)


def backfill(
    services: Services,
    mailbox: Mailbox,
    uids: list[int],
    progress: Progress = lambda _count: None,
) -> Tally:
    """Capture the messages ``uids`` of ``mailbox`` and normalize them; ``progress(n)`` per batch.

    Store failures propagate (what was captured stays captured, for the
    runners or the next run). A message a bug of ours fails on is counted
    and skipped.
    """
    tally = Tally()
    size = services.settings.imap_batch_size
    for start in range(0, len(uids), size):
        batch = uids[start : start + size]
        captured = _capture(services, mailbox, batch, tally)
        for item, outcome in zip(captured, settle_mail_captures(services, captured), strict=True):
            tally.count_outcome(item, outcome)
        progress(len(batch))
    log.info("backfill of %s: %s", mailbox.folder, tally.describe())
    return tally


def _capture(services: Services, mailbox: Mailbox, uids: list[int], tally: Tally) -> list[Captured]:
    """The batch's captures, one group commit per group fetched; our failures raise."""
    captured: list[Captured] = []
    for group in by_size(mailbox.fetch(uids)):
        outcomes, stop = capture_fetched(services, mailbox, group)
        for _uid, item in outcomes:
            tally.count_capture(item)
            if item is not None:
                captured.append(item)
        if stop is not None:
            raise stop
    return captured
