"""One connection's work on the inbox: find messages, commit them, then move them.

IMAP inbox -> connection -> **InboxSync** (search -> fetch ``BODY.PEEK[]`` +
INTERNALDATE in batches -> ``ingest_mail`` commits evidence, complaint and
outbox -> MOVE to the processed or quarantine folder -> checkpoint).

The order is the durability promise: a message leaves the inbox only after
the store committed it. If we die in between, the message is still in the
inbox at the next start, and the dedup in ``ingest_mail`` finds the
complaint already recorded: the move happens, no second complaint does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from imapclient import IMAPClient

from channels.imap.checkpoint import start_checkpoint
from channels.imap.connection import ImapConfigError, mailbox_name
from channels.imap.mailbox import Mailbox
from channels.imap.outcomes import DESTINATIONS, Destination, Tally, ingest_fetched
from gateway.services import Services
from gateway.store.checkpoints import ImapCheckpoints

log = logging.getLogger("intake.imap")


class InboxSync:
    """Bring the store up to date with the inbox, on one logged-in client."""

    def __init__(self, services: Services, client: IMAPClient, stop: threading.Event) -> None:
        settings = services.settings
        self.services = services
        self.stop = stop
        self.batch_size = settings.imap_batch_size
        self.folders = {
            Destination.PROCESSED: settings.imap_processed_folder,
            Destination.QUARANTINE: settings.imap_quarantine_folder,
        }
        if settings.imap_folder in self.folders.values():
            raise ImapConfigError(
                "INTAKE_IMAP_FOLDER must differ from the processed and quarantine folders"
            )
        self.mailbox = Mailbox(client, settings.imap_folder)
        for folder in self.folders.values():
            self.mailbox.ensure_folder(folder)
        self.name = mailbox_name(settings)
        self.checkpoints = ImapCheckpoints(services.store.engine)
        self.checkpoint = start_checkpoint(self.checkpoints, self.name, self.mailbox.uidvalidity)
        # UIDs a bug of ours failed on: skipped until the next full resync.
        self.failed: set[int] = set()

    def run(self, *, full: bool) -> Tally:
        """Process what is waiting: everything (``full``), or what arrived after the checkpoint.

        Stops between batches when ``stop`` is set; what was committed is moved.
        """
        if full:
            self.failed.clear()
            uids = self.mailbox.all_uids()
        else:
            uids = self.mailbox.uids_after(self.checkpoint.last_uid)
        tally = Tally()
        for batch in _batches([uid for uid in uids if uid not in self.failed], self.batch_size):
            if self.stop.is_set():
                break
            self._batch(batch, tally)
        if tally.total:
            log.info(
                "%s sync of %s: %s",
                "full" if full else "new-mail",
                self.name.folder,
                tally.describe(),
            )
        return tally

    def _batch(self, uids: Sequence[int], tally: Tally) -> None:
        done: dict[Destination, list[int]] = {destination: [] for destination in Destination}
        try:
            for message in self.mailbox.fetch(uids):
                result = ingest_fetched(
                    self.services, self.name.folder, self.mailbox.uidvalidity, message
                )
                if result is None:
                    tally.failed += 1
                    self.failed.add(message.uid)
                    continue
                tally.count(result)
                done[DESTINATIONS[result.outcome]].append(message.uid)
        finally:
            # Also when the store failed half-way: what it committed is acknowledged.
            self._acknowledge(done)

    def _acknowledge(self, done: dict[Destination, list[int]]) -> None:
        moved: list[int] = []
        for destination, uids in done.items():
            self.mailbox.move(uids, self.folders[destination])
            moved += uids
        if moved:
            self.checkpoint = self.checkpoints.advance(
                self.name.key, self.mailbox.uidvalidity, max(moved)
            )
            log.debug("checkpoint of %s at UID %s", self.name.folder, self.checkpoint.last_uid)


def _batches(uids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]
