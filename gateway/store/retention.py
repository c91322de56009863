"""The retention policy (law 09-08) and the purge that applies it.

``intake retention purge`` -> **Retention.due** (what is past the policy,
per kind) -> **Retention.purge** (one transaction per batch of items: rows
redacted, removals appended to the evidence log) -> blobs unlinked after
each commit.

Kinds and their clocks (days in the settings, ``INTAKE_RETENTION_*``):

- ``raw``: the raw input and text of e-mail, SMS, WhatsApp, web form and API
  complaints, from the answer;
- ``recording``: phone complaints (recording, transcript, caller), from receipt;
- ``letter``: postal letters (scans, OCR text, sender), from the answer;
- ``attachment``: attachments of the ``raw`` kind's complaints, from the answer;
- ``refused``: quarantined refused heads and resolved quarantine items, from
  the quarantine.

Intake events that are not complaints (a missed call, an auto-reply, an
acknowledgement's event) lose their details and raw input after the
``recording`` days (phone) or the ``raw`` days (the rest), from receipt; the
daily root events hold no personal data and are kept.

"The answer" is the ``answered_at`` (else ``closed_at``) case handling
reported; with no report, the legal answer deadline (``answer_due_at``, or
the extended one). A complaint reported open (``in_progress``, ``extended``)
is never purged, nor one within its answer period (until the deadline, the
extended one if reported), whatever its kind's days; a later follow-up moves
its clock to the follow-up's receipt. What a purge keeps and removes:
``gateway.store.redaction``. The purge works ``PURGE_BATCH`` items per
transaction and unlinks their files after each commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from config.settings import Settings
from gateway.store.blobs import BlobStore
from gateway.store.chain import append_removals
from gateway.store.db import committing, read_connection
from gateway.store.evidence import ROOT_KIND
from gateway.store.redaction import (
    attachment_removal,
    content_removed,
    leftover_blobs,
    redact_complaint,
    redact_event,
    removed_pairs,
    unlink_removed,
)
from gateway.store.redaction_rows import redact_quarantined
from gateway.store.tables import (
    ComplaintRow,
    ComplaintStateRow,
    EventRow,
    EvidenceRow,
    QuarantineRow,
)

RAW, RECORDING, LETTER, ATTACHMENT, REFUSED = "raw", "recording", "letter", "attachment", "refused"
KINDS = (RAW, RECORDING, LETTER, ATTACHMENT, REFUSED)
# The kind of a complaint's content, by channel; any other channel is ``raw``.
KIND_OF_CHANNEL = {"phone": RECORDING, "letter": LETTER}
# Items purged in one transaction; their files are unlinked after its commit.
PURGE_BATCH = 100
# Reported states in which a complaint is still being handled.
OPEN_STATES = frozenset({"received", "in_progress", "extended"})


@dataclass(frozen=True)
class Policy:
    """Days each kind is kept, from its clock."""

    days: dict[str, int]

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            {
                RAW: settings.retention_raw_days,
                RECORDING: settings.retention_recording_days,
                LETTER: settings.retention_letter_days,
                ATTACHMENT: settings.retention_attachment_days,
                REFUSED: settings.retention_refused_days,
            }
        )

    def keep(self, kind: str) -> timedelta:
        return timedelta(days=self.days[kind])


@dataclass(frozen=True)
class Due:
    """One item past the policy: a complaint's content, its attachments, a quarantined input."""

    kind: str
    item_id: str  # complaint id, or quarantine id
    reference: str | None
    clock: datetime  # when the kind's clock started
    blobs: tuple[str, ...] = ()  # attachment kind: the blobs due
    event: bool = False  # an intake event (missed call, auto-reply), not a complaint


@dataclass
class KindSummary:
    items: int = 0
    blobs: int = 0
    bytes: int = 0


@dataclass
class PurgeSummary:
    kinds: dict[str, KindSummary] = field(default_factory=lambda: {k: KindSummary() for k in KINDS})
    # Complaints past a clock but kept: reported open.
    kept_open: int = 0
    files_deleted: int = 0


@dataclass(frozen=True)
class _Case:
    answered: datetime | None
    open: bool
    extended_until: datetime | None


class Retention:
    def __init__(self, engine: Engine, blobs: BlobStore, policy: Policy) -> None:
        self.engine = engine
        self.blobs = blobs
        self.policy = policy

    # -- what is due --------------------------------------------------------
    def due(self, now: datetime | None = None) -> tuple[list[Due], int]:
        """Everything past the policy at ``now``, and how many complaints were kept as open."""
        now = now or datetime.now(UTC)
        with read_connection(self.engine) as connection:
            content = content_removed(connection)
            items, kept_open = self._due_complaints(connection, now, content)
            items.extend(self._due_events(connection, now, content))
            items.extend(self._due_refused(connection, now))
        return items, kept_open

    def _due_complaints(
        self, connection: Connection, now: datetime, content: set[str]
    ) -> tuple[list[Due], int]:
        shortest = min(self.policy.days[kind] for kind in (RAW, RECORDING, LETTER, ATTACHMENT))
        pairs = removed_pairs(connection)
        cases = _cases(connection)
        follow_ups = dict(
            connection.execute(
                select(ComplaintRow.follow_up_of, func.max(ComplaintRow.received_at))
                .where(ComplaintRow.follow_up_of.is_not(None))
                .group_by(ComplaintRow.follow_up_of)
            ).all()
        )
        items: list[Due] = []
        kept_open = 0
        for row in _candidates(connection, now - timedelta(days=shortest)):
            if row.evidence_id in content:
                continue
            case = cases.get(row.id)
            if _being_handled(row, case, now):
                kept_open += 1
                continue
            kind = KIND_OF_CHANNEL.get(row.channel, RAW)
            answer = _answer_clock(row, case)
            later = follow_ups.get(row.reference)
            received = max(row.received_at, later) if later else row.received_at
            answer = max(answer, later) if later else answer
            clock = received if kind == RECORDING else answer
            if now >= clock + self.policy.keep(kind):
                items.append(Due(kind, row.id, row.reference, clock))
            elif kind == RAW and now >= answer + self.policy.keep(ATTACHMENT):
                attachments = _attachments(row.message, row.evidence_id, pairs)
                if attachments:
                    items.append(Due(ATTACHMENT, row.id, row.reference, answer, attachments))
        return items, kept_open

    def _due_events(
        self, connection: Connection, now: datetime, content: set[str]
    ) -> Iterator[Due]:
        """Intake events (missed calls, auto-replies, acknowledgements' events), from receipt."""
        shortest = min(self.policy.days[RAW], self.policy.days[RECORDING])
        rows = connection.execute(
            select(EventRow.id, EventRow.evidence_id, EvidenceRow.channel, EvidenceRow.received_at)
            .join(EvidenceRow, EvidenceRow.id == EventRow.evidence_id)
            .where(EventRow.kind != ROOT_KIND)
            .where(EvidenceRow.received_at < now - timedelta(days=shortest))
            .order_by(EvidenceRow.received_at)
        )
        for event_id, evidence_id, channel, received_at in rows:
            kind = RECORDING if KIND_OF_CHANNEL.get(channel) == RECORDING else RAW
            if evidence_id not in content and now >= received_at + self.policy.keep(kind):
                yield Due(kind, event_id, None, received_at, event=True)

    def _due_refused(self, connection: Connection, now: datetime) -> Iterator[Due]:
        limit = now - self.policy.keep(REFUSED)
        rows = connection.execute(
            select(QuarantineRow.id, QuarantineRow.created_at, QuarantineRow.kept_bytes)
            .where(QuarantineRow.created_at < limit)
            .where(
                (QuarantineRow.kept_bytes > 0)
                | (QuarantineRow.kept_bytes.is_(None) & QuarantineRow.resolved_at.is_not(None))
            )
            .order_by(QuarantineRow.created_at)
        )
        for item_id, created_at, _kept in rows:
            yield Due(REFUSED, item_id, None, created_at)

    # -- the purge ----------------------------------------------------------
    def purge(
        self,
        items: list[Due],
        progress: Callable[[int, int], None] | None = None,
        batch: int = PURGE_BATCH,
    ) -> PurgeSummary:
        """Remove what ``items`` name, one transaction per ``batch`` items (a purge stopped
        half-way resumes), the files of each batch unlinked after its commit."""
        summary = PurgeSummary()
        with read_connection(self.engine) as connection:
            leftovers = leftover_blobs(connection, self.blobs)
        if leftovers:
            with committing(self.engine) as connection:
                summary.files_deleted += unlink_removed(connection, self.blobs, leftovers)
        done = 0
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            digests: list[str] = []
            with committing(self.engine) as connection:
                for item in chunk:
                    removed, size = self._remove(connection, item)
                    digests.extend(removed)
                    figures = summary.kinds[item.kind]
                    figures.items += 1
                    figures.blobs += len(removed)
                    figures.bytes += size
            with committing(self.engine) as connection:
                summary.files_deleted += unlink_removed(connection, self.blobs, digests)
            done += len(chunk)
            if progress is not None:
                progress(done, len(items))
        return summary

    def _remove(self, connection: Connection, item: Due) -> tuple[list[str], int]:
        reason = f"retention:{item.kind}"
        if item.kind == REFUSED:
            return redact_quarantined(connection, item.item_id, reason)
        if item.event:
            redacted = redact_event(connection, item.item_id, reason)
            return redacted.blobs, redacted.bytes
        if item.kind == ATTACHMENT:
            return _remove_attachments(connection, item, reason)
        redacted = redact_complaint(connection, item.item_id, reason)
        return redacted.blobs, redacted.bytes


def _cases(connection: Connection) -> dict[str, _Case]:
    rows = connection.execute(
        select(
            ComplaintStateRow.complaint_id,
            ComplaintStateRow.status,
            ComplaintStateRow.answered_at,
            ComplaintStateRow.closed_at,
            ComplaintStateRow.extended_until,
        )
    )
    return {
        complaint_id: _Case(answered or closed, status in OPEN_STATES, extended)
        for complaint_id, status, answered, closed, extended in rows
    }


def _candidates(connection: Connection, received_before: datetime) -> Iterator[Any]:
    """Complaints received before the shortest clock could have run out (paged by id)."""
    after = ""
    while True:
        rows = connection.execute(
            select(ComplaintRow)
            .where(ComplaintRow.received_at < received_before, ComplaintRow.id > after)
            .order_by(ComplaintRow.id)
            .limit(500)
        ).all()
        yield from rows
        if len(rows) < 500:
            return
        after = rows[-1].id


def _being_handled(row: Any, case: _Case | None, now: datetime) -> bool:
    """Reported open, or still within its answer period (the extended one when reported):
    its content is the record the answer needs, whatever a kind's days say (a recording
    kept fewer days than the 40 of the answer period is kept until it is over)."""
    if case is not None and case.open:
        return True
    deadline = row.answer_due_at
    if case is not None and case.extended_until is not None:
        deadline = max(deadline, case.extended_until)
    return now <= deadline


def _answer_clock(row: ComplaintRow, case: _Case | None) -> datetime:
    if case is not None and case.answered is not None:
        return case.answered
    if case is not None and case.extended_until is not None:
        return max(row.answer_due_at, case.extended_until)
    return row.answer_due_at


def _attachments(
    message: str, evidence_id: str, pairs: set[tuple[str | None, str]]
) -> tuple[str, ...]:
    document = json.loads(message)
    return tuple(
        item["sha256"]
        for item in document.get("attachments") or []
        if (evidence_id, item["sha256"]) not in pairs
    )


def _remove_attachments(connection: Connection, item: Due, reason: str) -> tuple[list[str], int]:
    row = connection.execute(select(ComplaintRow).where(ComplaintRow.id == item.item_id)).one()
    evidence = connection.execute(
        select(EvidenceRow).where(EvidenceRow.id == row.evidence_id)
    ).one()
    message = json.loads(row.message)
    size = 0
    for attachment in message.get("attachments") or []:
        if attachment["sha256"] in item.blobs:
            size += int(attachment.get("size") or 0)
            attachment["name"], attachment["ocr_text"] = None, None
    connection.execute(
        update(ComplaintRow).where(ComplaintRow.id == row.id).values(message=json.dumps(message))
    )
    append_removals(connection, [attachment_removal(evidence, d, reason) for d in item.blobs])
    return list(item.blobs), size
