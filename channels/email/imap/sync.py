"""One connection's work on the inbox: find messages, commit them, then move them.

IMAP inbox -> connection -> **InboxSync** (search -> fetch ``BODY.PEEK[]`` +
INTERNALDATE in batches -> ``read_mail`` each, then ``commit_mails`` commits
the batch's evidence, complaints and outbox rows in one group commit -> MOVE
the batch to the processed or quarantine folder -> checkpoint).

The order is the durability promise: a message leaves the inbox only after
the store committed it. If we die in between, the message is still in the
inbox at the next start, and the dedup in ``ingest_mail`` finds the
complaint already recorded: the move happens, no second complaint does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence

from imapclient import IMAPClient

from channels.email.imap.checkpoint import start_checkpoint
from channels.email.imap.connection import ImapConfigError, mailbox_name
from channels.email.imap.mailbox import FETCH_BYTES, FetchedMessage, Mailbox
from channels.email.imap.outcomes import DESTINATIONS, OUR_FAILURES, Destination, Tally, log_result
from channels.email.intake import (
    MailArrival,
    MailComplaint,
    MailResult,
    commit_mails,
    read_mail,
)
from gateway.lib.services import Services

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
                tally.describe(),
            )
        return tally

    def _batch(self, uids: Sequence[int], tally: Tally) -> None:
        done: dict[Destination, list[int]] = {destination: [] for destination in Destination}
        try:
            for group in _by_size(self.mailbox.fetch(uids)):
                outcomes, stop = self._ingest(group)
                for uid, result in outcomes:
                    if result is None:
                        tally.failed += 1
                        self.failed.add(uid)
                        continue
                    tally.count(result)
                    done[DESTINATIONS[result.outcome]].append(uid)
                if stop is not None:
                    raise stop
        finally:
            # Also when the store failed half-way: what it committed is acknowledged.
            self._acknowledge(done)

    def _ingest(
        self, messages: Sequence[FetchedMessage]
    ) -> tuple[list[tuple[int, MailResult | None]], Exception | None]:
        """Read each mail, then commit the complaints among them in one group commit.

        Outcomes in UID order, ``None`` for a mail a bug of ours failed on
        (left in place). Our own failure (``OUR_FAILURES``) ends the list at
        that mail and is returned: nothing from it on may be acknowledged,
        though complaints after it may be committed already (the next pass
        finds them by their dedup key).
        """
        read: list[tuple[int, MailResult | MailComplaint | None]] = []
        stop: Exception | None = None
        for message in messages:
            try:
                read.append((message.uid, read_mail(self.services, self._arrival(message))))
            except OUR_FAILURES as exc:
                stop = exc
                break
            except Exception:
                log.exception(
                    "UID %s in %s could not be processed; it is left in place",
                    message.uid,
                    self.name.folder,
                )
                read.append((message.uid, None))
        complaints = [item for _, item in read if isinstance(item, MailComplaint)]
        committed = iter(commit_mails(self.services, complaints))
        outcomes: list[tuple[int, MailResult | None]] = []
        for uid, item in read:
            outcome = next(committed) if isinstance(item, MailComplaint) else item
            if isinstance(outcome, OUR_FAILURES):
                return outcomes, outcome
            if isinstance(outcome, Exception):
                log.error(
                    "UID %s in %s could not be committed; it is left in place",
                    uid,
                    self.name.folder,
                    exc_info=outcome,
                )
                outcome = None
            if outcome is not None:
                log_result(uid, outcome)
            outcomes.append((uid, outcome))
        return outcomes, stop

    def _arrival(self, message: FetchedMessage) -> MailArrival:
        return MailArrival(
            raw=message.raw,
            received_at=message.internal_date,
            source_ids={
                "imap_uidvalidity": self.mailbox.uidvalidity,
                "imap_uid": message.uid,
                "imap_folder": self.name.folder,
            },
        )

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
