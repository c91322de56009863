"""One connection's work on the inbox: find messages, capture them, then move them.

IMAP inbox -> connection -> **InboxSync** (search -> fetch ``BODY.PEEK[]`` +
INTERNALDATE in batches -> ``captures.capture_many``: the raw bytes, the
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
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from imapclient import IMAPClient

from channels.email.imap.checkpoint import start_checkpoint
from channels.email.imap.connection import ImapConfigError, mailbox_name
from channels.email.imap.mailbox import FETCH_BYTES, FetchedMessage, Mailbox
from channels.email.imap.outcomes import OUR_FAILURES, Tally
from channels.email.staged import mail_capture
from gateway.lib.services import Services
from gateway.store.captures import Captured

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
            for group in _by_size(self.mailbox.fetch(uids)):
                outcomes, stop = self._capture(group)
                for uid, captured in outcomes:
                    if captured is None:
                        tally.failed += 1
                        self.failed.add(uid)
                        continue
                    tally.captured += 1
                    tally.repeated += 0 if captured.created else 1
                    done.append(uid)
                if stop is not None:
                    raise stop
        finally:
            # Also when the store failed half-way: what it committed is acknowledged.
            self._acknowledge(done)

    def _capture(
        self, messages: Sequence[FetchedMessage]
    ) -> tuple[list[tuple[int, Captured | None]], Exception | None]:
        """Capture the messages in one group commit; nothing is parsed here.

        Outcomes in UID order, ``None`` for a mail whose capture failed on
        something particular to it (left in place). Our own failure
        (``OUR_FAILURES``: the store down) ends the list at that mail and is
        returned: nothing from it on may be acknowledged, though captures
        after it may be committed already (the next pass finds them by their
        dedup key, the bytes' hash, and answers the same reference).
        """
        committed = self.services.store.captures.capture_many(
            [
                mail_capture(message.raw, message.internal_date, self._ids(message))
                for message in messages
            ]
        )
        outcomes: list[tuple[int, Captured | None]] = []
        for message, outcome in zip(messages, committed, strict=True):
            if isinstance(outcome, OUR_FAILURES):
                return outcomes, outcome
            if isinstance(outcome, Exception):
                log.error(
                    "UID %s in %s could not be captured; it is left in place",
                    message.uid,
                    self.name.folder,
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

    def _ids(self, message: FetchedMessage) -> dict[str, Any]:
        return {
            "imap_uidvalidity": self.mailbox.uidvalidity,
            "imap_uid": message.uid,
            "imap_folder": self.name.folder,
        }

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


def _by_size(messages: Iterable[FetchedMessage]) -> Iterator[list[FetchedMessage]]:
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
