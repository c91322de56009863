"""Where the IMAP poller records how far it got in a mailbox: (UIDVALIDITY, UID).

IMAP inbox -> channels/email/imap (fetch, ingest, move) -> **checkpoint saved here**.
A checkpoint says: every message of this mailbox with a UID up to ``last_uid``
(under this ``uidvalidity``) has been committed to the store and moved out
of the inbox. The poller asks the server only for UIDs above it when IDLE
says something arrived; a different UIDVALIDITY means the UIDs were
renumbered, so the poller starts over from UID 0 (the e-mail dedup keeps
that from creating second complaints).

The table is declared on the store's ``Base`` so the Alembic migrations see
it (``gateway/store/migrations/env.py`` imports this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from gateway.store.db import reading, writing
from gateway.store.intake import guarded
from gateway.store.tables import ImapCheckpointRow


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Checkpoint:
    mailbox: str
    uidvalidity: int
    last_uid: int
    updated_at: datetime


def _frozen(row: ImapCheckpointRow) -> Checkpoint:
    return Checkpoint(row.mailbox, row.uidvalidity, row.last_uid, row.updated_at)


class ImapCheckpoints:
    """Read and move the checkpoints; database failures raise ``StoreUnavailable``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, mailbox: str) -> Checkpoint | None:
        def action() -> Checkpoint | None:
            with reading(self.engine) as session:
                row = session.get(ImapCheckpointRow, mailbox)
                return None if row is None else _frozen(row)

        return guarded(action)

    def advance(self, mailbox: str, uidvalidity: int, uid: int) -> Checkpoint:
        """Record that everything up to ``uid`` is done; never moves back under one UIDVALIDITY."""
        return guarded(lambda: self._save(mailbox, uidvalidity, uid, keep_higher=True))

    def reset(self, mailbox: str, uidvalidity: int) -> Checkpoint:
        """Start a mailbox over under a new UIDVALIDITY (UIDs were renumbered)."""
        return guarded(lambda: self._save(mailbox, uidvalidity, 0, keep_higher=False))

    def _save(self, mailbox: str, uidvalidity: int, uid: int, *, keep_higher: bool) -> Checkpoint:
        try:
            return self._upsert(mailbox, uidvalidity, uid, keep_higher)
        except IntegrityError:
            # Another poller inserted the row first: update it instead.
            return self._upsert(mailbox, uidvalidity, uid, keep_higher)

    def _upsert(self, mailbox: str, uidvalidity: int, uid: int, keep_higher: bool) -> Checkpoint:
        with writing(self.engine) as session:
            row = session.get(ImapCheckpointRow, mailbox, with_for_update=True)
            if row is None:
                row = ImapCheckpointRow(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=uid)
                session.add(row)
            else:
                same_numbering = keep_higher and row.uidvalidity == uidvalidity
                row.last_uid = max(row.last_uid, uid) if same_numbering else uid
                row.uidvalidity = uidvalidity
                row.updated_at = _now()
            session.flush()
            return _frozen(row)
