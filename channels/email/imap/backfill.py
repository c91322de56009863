"""Re-reading a date range of a folder into the store, e.g. after an outage or a restore.

Folder (the inbox, or the processed folder) -> **backfill** -> ``ingest_mail``.
It selects the folder read-only (EXAMINE) and moves or flags nothing: the
poller alone acknowledges messages. The e-mail dedup (Message-ID + content
hash) makes running it twice, or over mail the poller already took, safe:
known mails find their complaint. The receipt time is still each message's
INTERNALDATE (IMAP keeps it through MOVE and COPY).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from imapclient import IMAPClient

from channels.email.imap.mailbox import Mailbox
from channels.email.imap.outcomes import Tally, ingest_fetched
from gateway.lib.services import Services

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
    """Ingest the messages ``uids`` of ``mailbox``; ``progress(n)`` after each batch of n.

    Store failures propagate (what was committed stays committed; run it
    again). A message a bug of ours fails on is counted and skipped.
    """
    folder = mailbox.folder
    tally = Tally()
    size = services.settings.imap_batch_size
    for start in range(0, len(uids), size):
        batch = uids[start : start + size]
        for message in mailbox.fetch(batch):
            result = ingest_fetched(services, folder, mailbox.uidvalidity, message)
            if result is None:
                tally.failed += 1
            else:
                tally.count(result)
        progress(len(batch))
    log.info("backfill of %s: %s", folder, tally.describe())
    return tally
