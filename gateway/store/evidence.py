"""The append-only evidence log: a hash chain over every captured input, and its check.

Every evidence row (a complaint's raw input, an intake event's) appends one
entry in the same transaction: ``(sequence, sha256 of the raw, received_at,
channel, source ids, previous entry's hash)``, sealed by ``entry_hash``, the
sha256 of the canonical encoding of those six values (``entry_hash``
below). Removing, reordering or changing an entry afterwards breaks the
chain; rewriting the whole tail is caught by the daily root published as
``event.evidence.root`` (downstream keeps a copy we cannot rewrite). A
captured entry whose evidence row is gone is named ``row missing``: purge
and erasure keep every row, so a missing one was deleted by hand.

Appends are serialized by the one-row ``evidence_chain_head`` table: read
``FOR UPDATE`` on PostgreSQL (SQLite has one writer anyway), sequence =
head + 1, head updated in the same transaction. Rows of the evidence table
written before the log existed are chained by migration 0014, in
``created_at`` order.

Removals (migration 0015): the retention purge and erasure requests
(``gateway.store.redaction``) append a ``removed`` entry per blob they
delete, naming its sha256, the captured entry it removes and the reason,
sealed in the entry's hash. ``verify`` counts a captured entry whose blob is
gone as removed when a removal entry names that very entry (its
``removes``), and names it ``blob missing`` otherwise: blobs are stored by
content, so a removal naming the same sha256 for another input (the same
mail received twice, a refused input) excuses nothing.

The daily root of a day (Africa/Casablanca, the settings' time zone) is the
``entry_hash`` of the last entry appended before the next local midnight:
it seals every entry up to it. ``publish_due_root`` publishes yesterday's
once (the event's dedup key is the day), from the relay's loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from gateway.store.blobs import SCHEME, BlobChanged, BlobMissing, BlobStore
from gateway.store.chain import CAPTURED, GENESIS, REMOVED, entry_hash
from gateway.store.db import read_connection
from gateway.store.intake import ComplaintStore, guarded
from gateway.store.tables import ComplaintRow, EvidenceChainHeadRow, EvidenceLogRow, EvidenceRow
from normalizer.contract import Channel, IntakeEvent
from normalizer.draft import RawInput

log = logging.getLogger("intake.store")

ROOT_KIND = "evidence.root"
# A day's root is published this long after its local midnight (clock skew between writers).
ROOT_GRACE = timedelta(minutes=5)
_PAGE = 500


@dataclass(frozen=True)
class Broken:
    """One broken entry: what is wrong, and what names it."""

    problem: str  # blob missing, blob changed, entry changed, entry missing, chain broken,
    # row missing
    sequence: int | None
    reference: str | None
    sha256: str | None
    detail: str = ""

    def line(self) -> str:
        return (
            f"{self.problem}\tsequence {self.sequence if self.sequence is not None else '-'}"
            f"\t{self.reference or '-'}\tsha256 {self.sha256 or '-'}"
            + (f"\t{self.detail}" if self.detail else "")
        )


@dataclass
class Verification:
    entries: int = 0
    last_sequence: int = 0
    # Removal entries seen, and captured entries whose blob is gone under one of them
    # (removed under the retention policy or an erasure, recorded: not broken).
    removals: int = 0
    removed: int = 0
    broken: list[Broken] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.broken


@dataclass(frozen=True)
class Root:
    day: date
    sequence: int
    root: str


class EvidenceLog:
    """The chain's reader: ``verify``, and the daily root (``root_of``, ``publish_root``)."""

    def __init__(self, engine: Engine, blobs: BlobStore, complaints: ComplaintStore, zone: str):
        self.engine = engine
        self.blobs = blobs
        self.complaints = complaints
        self.zone = ZoneInfo(zone)
        self._published: date | None = None  # the last day this process saw published

    # -- verify -----------------------------------------------------------
    def verify(
        self,
        since: date | None = None,
        progress: Callable[[int], None] | None = None,
        every: int = 1000,
    ) -> Verification:
        """Re-read every blob, check its hash and the chain from ``since`` (a local day) on."""
        start = None if since is None else self._midnight(since)
        result = Verification()
        with read_connection(self.engine) as connection:
            previous = self._entry_before(connection, start)
            expected_sequence = 1 if previous is None else previous[0] + 1
            previous_hash = GENESIS if previous is None else previous[1]
            removed = self._removed_entries(connection)
            for entry in self._entries(connection, start):
                result.entries += 1
                self._check_entry(entry, expected_sequence, previous_hash, result, removed)
                expected_sequence = entry.sequence + 1
                previous_hash = entry.entry_hash
                result.last_sequence = entry.sequence
                if progress is not None and result.entries % every == 0:
                    progress(result.entries)
            head = connection.execute(
                select(EvidenceChainHeadRow.sequence, EvidenceChainHeadRow.entry_hash)
            ).first()
            if head is not None and int(head[0]) >= expected_sequence:
                for sequence in range(expected_sequence, int(head[0]) + 1):
                    result.broken.append(
                        Broken("entry missing", sequence, None, None, "after the last entry")
                    )
            elif head is not None and result.entries and head[1] != previous_hash:
                result.broken.append(
                    Broken("chain broken", result.last_sequence, None, None, "head differs")
                )
            result.broken.extend(self._unlogged(connection, start))
        return result

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.zone).astimezone(UTC)

    def _entry_before(
        self, connection: Connection, start: datetime | None
    ) -> tuple[int, str] | None:
        if start is None:
            return None
        row = connection.execute(
            select(EvidenceLogRow.sequence, EvidenceLogRow.entry_hash)
            .where(EvidenceLogRow.appended_at < start)
            .order_by(EvidenceLogRow.sequence.desc())
            .limit(1)
        ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    @staticmethod
    def _removed_entries(connection: Connection) -> set[int]:
        """Sequences of the captured entries a removal names (the whole log: it may come later)."""
        return {
            int(sequence)
            for sequence in connection.scalars(
                select(EvidenceLogRow.removes).where(
                    EvidenceLogRow.kind == REMOVED, EvidenceLogRow.removes.is_not(None)
                )
            )
            if sequence is not None
        }

    def _entries(self, connection: Connection, start: datetime | None) -> Iterator[_Entry]:
        after = 0
        while True:
            query = (
                select(
                    *EvidenceLogRow.__table__.c,
                    ComplaintRow.reference,
                    EvidenceRow.id.label("evidence_row"),
                )
                .outerjoin(ComplaintRow, ComplaintRow.evidence_id == EvidenceLogRow.evidence_id)
                .outerjoin(EvidenceRow, EvidenceRow.id == EvidenceLogRow.evidence_id)
                .where(EvidenceLogRow.sequence > after)
                .order_by(EvidenceLogRow.sequence)
                .limit(_PAGE)
            )
            if start is not None:
                query = query.where(EvidenceLogRow.appended_at >= start)
            rows = connection.execute(query).all()
            for row in rows:
                yield _Entry.of(row)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1].sequence)

    def _check_entry(
        self,
        entry: _Entry,
        expected: int,
        previous_hash: str,
        result: Verification,
        removed: set[int],
    ) -> None:
        name = (entry.sequence, entry.reference, entry.sha256)
        if entry.sequence > expected:
            for missing in range(expected, entry.sequence):
                result.broken.append(Broken("entry missing", missing, None, None))
        elif entry.previous_hash != previous_hash:
            result.broken.append(Broken("chain broken", *name, "previous hash differs"))
        sealed = entry_hash(
            entry.sequence,
            entry.sha256,
            entry.received_at,
            entry.channel,
            entry.source_ids,
            entry.previous_hash,
            {"reason": entry.reason, "removes": entry.removes} if entry.kind == REMOVED else None,
        )
        if sealed != entry.entry_hash or entry.stored_at != SCHEME + entry.sha256:
            result.broken.append(Broken("entry changed", *name))
        if entry.kind == REMOVED:
            result.removals += 1
            return  # a removal names a blob that is gone on purpose
        if entry.evidence_id is not None and not entry.row_present:
            result.broken.append(Broken("row missing", *name, "evidence row deleted"))
        try:
            self.blobs.check(entry.sha256)
        except BlobMissing:
            if entry.sequence in removed:
                result.removed += 1
            else:
                result.broken.append(Broken("blob missing", *name))
        except BlobChanged as exc:
            result.broken.append(Broken("blob changed", *name, f"now {exc.actual}"))

    def _unlogged(self, connection: Connection, start: datetime | None) -> Iterator[Broken]:
        """Evidence rows no entry names: their entry was removed (or never written)."""
        logged = select(EvidenceLogRow.evidence_id).where(EvidenceLogRow.evidence_id.is_not(None))
        query = (
            select(EvidenceRow.sha256, ComplaintRow.reference)
            .outerjoin(ComplaintRow, ComplaintRow.evidence_id == EvidenceRow.id)
            .where(EvidenceRow.id.not_in(logged))
            .order_by(EvidenceRow.created_at)
        )
        if start is not None:
            query = query.where(EvidenceRow.created_at >= start)
        for sha256, reference in connection.execute(query):
            yield Broken("entry missing", None, reference, sha256, "evidence row not in the log")

    # -- the daily root ---------------------------------------------------
    def today(self) -> date:
        return datetime.now(self.zone).date()

    def root_of(self, day: date) -> Root | None:
        """The entry hash of the last entry appended before the end of ``day`` (local)."""
        end = self._midnight(day + timedelta(days=1))

        def action() -> Root | None:
            with read_connection(self.engine) as connection:
                row = connection.execute(
                    select(EvidenceLogRow.sequence, EvidenceLogRow.entry_hash)
                    .where(EvidenceLogRow.appended_at < end)
                    .order_by(EvidenceLogRow.sequence.desc())
                    .limit(1)
                ).first()
            return None if row is None else Root(day, int(row[0]), str(row[1]))

        return guarded(action)

    def publish_root(self, day: date) -> tuple[IntakeEvent, bool] | None:
        """Publish ``event.evidence.root`` for ``day`` (once: the day is the dedup key).

        Returns the event and whether it is new; ``None`` when the log was empty then.
        """
        root = self.root_of(day)
        if root is None:
            return None
        details = {
            "day": day.isoformat(),
            "timezone": str(self.zone),
            "sequence": root.sequence,
            "root": root.root,
            "algorithm": "sha256 hash chain: the entry hash of the day's last entry",
        }
        document = json.dumps(details, sort_keys=True, separators=(",", ":")).encode()
        raw = RawInput(
            channel=Channel.API,
            data=document,
            content_type="application/json",
            received_at=datetime.now(UTC),
            dedup_key=f"{ROOT_KIND}:{day.isoformat()}",
        )
        return self.complaints.record_event(raw, ROOT_KIND, details)

    def yesterday(self) -> date:
        return datetime.now(self.zone).date() - timedelta(days=1)

    def publish_due_root(self) -> tuple[IntakeEvent, bool] | None:
        """Yesterday's root, once the day is closed (a periodic step: cheap when done)."""
        now = datetime.now(self.zone)
        yesterday = (now - ROOT_GRACE).date() - timedelta(days=1)
        if self._published == yesterday:
            return None
        outcome = self.publish_root(yesterday)
        self._published = yesterday
        if outcome is not None and outcome[1]:
            log.info("evidence root of %s published: %s", yesterday, outcome[0].details["root"])
        return outcome


@dataclass(frozen=True)
class _Entry:
    sequence: int
    sha256: str
    stored_at: str
    channel: str
    source_ids: dict[str, Any]
    received_at: datetime
    previous_hash: str
    entry_hash: str
    reference: str | None
    kind: str = CAPTURED
    reason: str | None = None
    removes: int | None = None
    evidence_id: str | None = None
    row_present: bool = True

    @classmethod
    def of(cls, row: Any) -> _Entry:
        values = row._mapping
        return cls(
            sequence=int(values["sequence"]),
            sha256=values["sha256"],
            stored_at=values["stored_at"],
            channel=values["channel"],
            source_ids=dict(values["source_ids"] or {}),
            received_at=values["received_at"],
            previous_hash=values["previous_hash"],
            entry_hash=values["entry_hash"],
            reference=values["reference"],
            kind=values["kind"] or CAPTURED,
            reason=values["reason"],
            removes=None if values["removes"] is None else int(values["removes"]),
            evidence_id=values["evidence_id"],
            row_present=values["evidence_row"] is not None,
        )
