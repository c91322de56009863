"""IMAP commands on one selected folder: search, fetch without side effects, move.

IMAP inbox -> connection -> **mailbox** -> poller (ingest, then move) or
backfill (ingest only). State is keyed by UIDVALIDITY + UID, never by
``\\Seen``: fetches use ``BODY.PEEK[]`` so reading a message changes nothing
on the server, and a message leaves the inbox only through ``move``, after
the store committed it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from imapclient import DELETED, IMAPClient
from imapclient.exceptions import IMAPClientError

log = logging.getLogger("intake.imap")

# One FETCH asks for at most this many bytes of message bodies, whatever the
# batch size, so a batch of large mails does not sit in memory all at once.
FETCH_BYTES = 16 * 1024 * 1024
_BODY = b"BODY[]"
_INTERNALDATE = b"INTERNALDATE"
_SIZE = b"RFC822.SIZE"


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes
    # When the server accepted the message: the legal receipt time.
    internal_date: datetime


class Mailbox:
    """A folder selected on a logged-in client."""

    def __init__(self, client: IMAPClient, folder: str, *, readonly: bool = False) -> None:
        self.client = client
        self.folder = folder
        selected = client.select_folder(folder, readonly=readonly)
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        self._warned_expunge = False
        self.arrivals_reported()  # what SELECT said is already known

    # -- what is there ----------------------------------------------------
    def arrivals_reported(self) -> bool:
        """Whether the server announced new mail (``* n EXISTS``) since the last call.

        Servers tell of mail that arrived during a command in that command's
        response (a SEARCH, FETCH or MOVE of the sync): such mail is not in
        the SEARCH that ran before it, and IDLE will not announce it again.
        imaplib keeps those untagged responses; we take them here.
        """
        return bool(self.client._imap.untagged_responses.pop("EXISTS", None))

    def all_uids(self) -> list[int]:
        return sorted(self.client.search("ALL"))

    def uids_after(self, uid: int) -> list[int]:
        # "n:*" always includes the highest UID, even when it is below n.
        return sorted(found for found in self.client.search(["UID", f"{uid + 1}:*"]) if found > uid)

    def uids_between(self, since: date, before: date | None = None) -> list[int]:
        """Messages whose internal date falls on ``since`` or later (and before ``before``)."""
        criteria: list[object] = ["SINCE", since]
        if before is not None:
            criteria += ["BEFORE", before]
        return sorted(self.client.search(criteria))

    # -- reading without side effects ---------------------------------------
    def fetch(self, uids: Sequence[int]) -> Iterator[FetchedMessage]:
        """Bodies and internal dates, in UID order, a few megabytes per command.

        A UID that vanished meanwhile (another client expunged it) is skipped.
        """
        sizes = self.client.fetch(uids, ["RFC822.SIZE"])
        present = [uid for uid in uids if uid in sizes]
        for chunk in _chunks_by_size(
            present, {uid: int(sizes[uid].get(_SIZE, 0)) for uid in present}
        ):
            answer = self.client.fetch(chunk, ["BODY.PEEK[]", "INTERNALDATE"])
            for uid in chunk:
                item = answer.get(uid)
                if item is None or _BODY not in item:
                    log.info("UID %s vanished before it could be fetched", uid)
                    continue
                yield FetchedMessage(uid, bytes(item[_BODY]), _receipt_time(uid, item))

    # -- acknowledging ------------------------------------------------------
    def ensure_folder(self, folder: str) -> None:
        if self.client.folder_exists(folder):
            return
        try:
            self.client.create_folder(folder)
            log.info("created IMAP folder %s", folder)
        except IMAPClientError:
            # Another poller may have created it a moment ago.
            if not self.client.folder_exists(folder):
                raise

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move messages out of this folder: MOVE, or COPY + delete + expunge."""
        if not uids:
            return
        if self.client.has_capability("MOVE"):
            self.client.move(uids, folder)
            return
        self.client.copy(uids, folder)
        self.client.add_flags(uids, [DELETED], silent=True)
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(uids)
            return
        if not self._warned_expunge:
            log.warning(
                "server has neither MOVE nor UIDPLUS: a plain EXPUNGE also removes "
                "other messages flagged \\Deleted in %s",
                self.folder,
            )
            self._warned_expunge = True
        self.client.expunge()


def _receipt_time(uid: int, item: dict[bytes, object]) -> datetime:
    moment = item.get(_INTERNALDATE)
    if isinstance(moment, datetime):
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    log.warning("UID %s has no INTERNALDATE: using the time it was fetched", uid)
    return datetime.now(UTC)


def _chunks_by_size(uids: Iterable[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    chunk: list[int] = []
    total = 0
    for uid in uids:
        if chunk and total + sizes[uid] > FETCH_BYTES:
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += sizes[uid]
    if chunk:
        yield chunk
