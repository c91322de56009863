"""One connection's work on the inbox: find messages, capture them, then move them.

IMAP inbox -> connection -> **InboxSync** (search -> fetch ``BODY.PEEK[]`` +
INTERNALDATE in batches -> ``capture.capture_fetched``: the raw bytes, the
INTERNALDATE and the UIDs in one group commit, nothing parsed -> MOVE the
batch to the processed folder -> checkpoint) ... a normalizer runner
(``channels.email.staged.normalize_mail_captures``) makes the complaints, or
quarantines a malformed mail in the store.

The order is the durability promise: a message leaves the inbox only after
the store committed its capture. If we die in between, the message is still
in the inbox at the next start, and the capture's dedup key (the bytes'
hash) finds the first capture: the move happens, no second capture does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from imapclient import IMAPClient

from channels.email.imap.capture import by_size, capture_fetched
from channels.email.imap.checkpoint import start_checkpoint
from channels.email.imap.connection import ImapConfigError, mailbox_name
from channels.email.imap.mailbox import Mailbox
from channels.email.imap.outcomes import Tally
from gateway.lib.services import Services

log = logging.getLogger("intake.imap")


class InboxSync:
    """Bring the store up to date with the inbox, on one logged-in client."""

    def __init__(self, services: Services, client: IMAPClient, stop: threading.Event) -> None:
        settings = services.settings
        self.services = services
        self.stop = stop
        self.batch_size = settings.imap_batch_size
        # Every captured mail goes to the processed folder, a malformed one too: the
        # runner quarantines it in the store (``intake quarantine``), not in the mailbox.
        self.processed = settings.imap_processed_folder
        if settings.imap_folder in (self.processed, settings.imap_quarantine_folder):
            raise ImapConfigError(
                "INTAKE_IMAP_FOLDER must differ from the processed and quarantine folders"
            )
        self.mailbox = Mailbox(client, settings.imap_folder)
        self.mailbox.ensure_folder(self.processed)
        self.name = mailbox_name(settings)
        self.checkpoints = services.store.imap_checkpoints
        self.checkpoint = start_checkpoint(self.checkpoints, self.name, self.mailbox.uidvalidity)
        # UIDs a bug of ours failed on: skipped until the next full resync.
        self.failed: set[int] = set()

    def run(self, *, full: bool) -> Tally:
        """Process what is waiting: everything (``full``), or what arrived after the checkpoint.

        Stops between batches when ``stop`` is set; what was committed is moved.
        """
        if full:
            self.failed.clear()
        tally = Tally()
        self.mailbox.arrivals_reported()
        last = self.checkpoint.last_uid
        uids = self.mailbox.all_uids() if full else self.mailbox.uids_after(last)
        while True:
            for batch in _batches([uid for uid in uids if uid not in self.failed], self.batch_size):
                if self.stop.is_set():
                    break
                self._batch(batch, tally)
            # Mail that arrived while we worked was announced in the answers to
            # our own commands; IDLE would not announce it again.
            if self.stop.is_set() or not self.mailbox.arrivals_reported():
                break
            uids = self.mailbox.uids_after(self.checkpoint.last_uid)
        if tally.total:
            log.info(
                "%s sync of %s: %s",
                "full" if full else "new-mail",
                self.name.folder,
                tally.describe_captures(),
            )
        return tally

    def _batch(self, uids: Sequence[int], tally: Tally) -> None:
        done: list[int] = []
        try:
            for group in by_size(self.mailbox.fetch(uids)):
                outcomes, stop = capture_fetched(self.services, self.mailbox, group)
                for uid, captured in outcomes:
                    tally.count_capture(captured)
                    if captured is None:
                        self.failed.add(uid)
                    else:
                        done.append(uid)
                if stop is not None:
                    raise stop
        finally:
            # Also when the store failed half-way: what it committed is acknowledged.
            self._acknowledge(done)

    def _acknowledge(self, moved: list[int]) -> None:
        self.mailbox.move(moved, self.processed)
        if moved:
            self.checkpoint = self.checkpoints.advance(
                self.name.key, self.mailbox.uidvalidity, max(moved)
            )
            log.debug("checkpoint of %s at UID %s", self.name.folder, self.checkpoint.last_uid)


def _batches(uids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]
