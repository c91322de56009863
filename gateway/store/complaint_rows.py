"""The rows one complaint writes, rendered once, and the writer of a batch of them.

channel -> ``ComplaintStore.record_complaint`` -> **PendingComplaint** (the
message and its CloudEvents envelope rendered once, in the caller's thread)
-> group commit -> **write_batch**: one dedup look-up and one follow-up
look-up for the whole batch, then Core inserts of the evidence, complaint
and outbox rows and the evidence log's entries (``gateway.store.chain``),
inside the transaction the caller opened.

Nothing here commits, retries or decides what a repeat means to a channel:
``gateway.store.intake`` does that.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from gateway.store.blobs import StagedBlob, StoredBlob
from gateway.store.chain import append as append_to_chain
from gateway.store.customers import Link, Linkable
from gateway.store.customers import record as record_contacts
from gateway.store.customers import resolve as resolve_customers
from gateway.store.tables import ComplaintRow, EvidenceRow, IntakeRow, OutboxRow, TriageRow
from normalizer.assemble import assemble_message
from normalizer.contract import (
    Attachment,
    ComplaintEvent,
    ComplaintMessage,
    Evidence,
    routing_key_for,
)
from normalizer.customer import contact_keys
from normalizer.draft import AttachmentDraft, ComplaintDraft, RawInput

log = logging.getLogger("intake.store")

EVENT_CONTENT_TYPE = "application/cloudevents+json"
_EVIDENCE_FIELDS = frozenset(Evidence.model_fields)

_INSERT_EVIDENCE = insert(EvidenceRow.__table__)  # type: ignore[arg-type]
_INSERT_COMPLAINTS = insert(ComplaintRow.__table__)  # type: ignore[arg-type]
_INSERT_OUTBOX = insert(OutboxRow.__table__)  # type: ignore[arg-type]
# Built once: every commit looks its dedup keys up, and building the query
# each time cost more than running it.
_STORED = select(ComplaintRow.dedup_key, ComplaintRow.message, ComplaintRow.request_hash)
_STORED_ONE = _STORED.where(ComplaintRow.dedup_key == bindparam("key"))
_STORED_MANY = _STORED.where(ComplaintRow.dedup_key.in_(bindparam("keys", expanding=True)))

# The envelope is spliced around the message's JSON: that only works while
# ``data`` is its last field (a unit test compares with model_dump_json).
assert list(ComplaintEvent.model_fields)[-1] == "data", "ComplaintEvent.data must stay last"


def event_json(message: ComplaintMessage, message_json: str, source: str) -> bytes:
    """``ComplaintEvent.wrap(message, source).model_dump_json()``, the message rendered once."""
    head = ComplaintEvent.wrap(message, source).model_dump_json(exclude={"data"})
    return f'{head[:-1]},"data":{message_json}}}'.encode()


@dataclass
class PendingComplaint:
    """One complaint on its way to the database: its blobs are staged, its JSON rendered."""

    raw: RawInput
    message: ComplaintMessage
    event_source: str
    available_at: datetime | None = None
    # Blob folders to fsync before the rows that point into them commit.
    folders: tuple[Path, ...] = ()
    # Keys of the customer's phone and e-mail (``normalizer.customer``), the phone's first.
    contact_keys: tuple[str, ...] = ()
    # The evidence row already logged for this input (a non-complaint a person
    # makes a complaint of): no second row, no second entry in the evidence log.
    evidence_id: str | None = None
    message_json: str = field(init=False, default="")
    event_json: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        self._render()

    def change(self, **update: Any) -> None:
        """A new reference after a collision, a follow-up link dropped: render again."""
        self.message = self.message.model_copy(update=update)
        self._render()

    def linkable(self) -> Linkable:
        message = self.message
        return Linkable(message.id, message.reference, message.received_at, self.contact_keys)

    def _render(self) -> None:
        self.message_json = self.message.model_dump_json()
        self.event_json = event_json(self.message, self.message_json, self.event_source)


def pending_complaint(
    raw: RawInput,
    draft: ComplaintDraft,
    staged: Sequence[StagedBlob],
    *,
    reference: str,
    event_source: str,
    available_at: datetime | None,
    customer_secret: bytes = b"",
) -> PendingComplaint:
    """The complaint a normalized draft becomes, its raw input and attachments staged (in order).

    With ``customer_secret``, ``customer.key`` is the key of its first contact
    point; ``write_batch`` replaces it by the customer's own when one is known.
    """
    raw_blob, attached = staged[0], staged[1:]
    keys = (
        tuple(contact_keys(draft.customer, customer_secret, draft.origin))
        if customer_secret
        else ()
    )
    message = assemble_message(
        draft,
        complaint_id=draft.assigned_id or str(uuid.uuid4()),
        reference=reference,
        evidence=evidence_for(raw, raw_blob.blob),
        attachments=[
            _attachment(item, stage.blob)
            for item, stage in zip(draft.attachments, attached, strict=True)
        ],
        processed_at=datetime.now(UTC),
    )
    if keys:
        customer = message.customer.model_copy(update={"key": keys[0]})
        message = message.model_copy(update={"customer": customer})
    return PendingComplaint(
        raw,
        message,
        event_source,
        available_at,
        folders=tuple(stage.folder for stage in staged),
        contact_keys=keys,
    )


def evidence_for(raw: RawInput, stored: StoredBlob) -> Evidence:
    """Where the raw input is kept, with the identifiers the contract knows of its source."""
    return Evidence(
        stored_at=stored.location,
        sha256=stored.sha256,
        size=stored.size,
        content_type=raw.content_type,
        **{k: v for k, v in raw.source_ids.items() if k in _EVIDENCE_FIELDS},
    )


def _attachment(item: AttachmentDraft, stored: StoredBlob) -> Attachment:
    return Attachment(
        name=item.name,
        content_type=item.content_type or "application/octet-stream",
        declared_type=item.declared_type,
        size=stored.size,
        sha256=stored.sha256,
        stored_at=stored.location,
        ocr_text=item.ocr_text,
    )


@dataclass(frozen=True)
class Written:
    """What the database holds under an item's dedup key after ``write_batch``."""

    message: ComplaintMessage
    created: bool
    # What was sent under the key the first time (to tell a retry from a reuse).
    request_hash: str | None


def write_batch(
    connection: Connection, items: Sequence[PendingComplaint], *, triaged_too: bool = True
) -> list[Written]:
    """Insert the new complaints of ``items``; one outcome per item, in order.

    A key already stored, or repeated inside the batch, is not inserted again:
    its outcome is the first complaint. So is a key the triage kept apart as
    a non-complaint (``triaged_too``): the first decision sticks, a repeat
    whose filter verdict flipped does not make a second record with another
    reference (the staff page is where a person turns it into a complaint,
    and calls this with ``triaged_too=False``). Raises ``IntegrityError`` when
    a row is refused (a reference drawn twice, a concurrent writer on
    PostgreSQL): the caller rolls back and writes the items one by one.
    """
    keys = {item.raw.dedup_key for item in items}
    stored = stored_under(connection, keys)
    if triaged_too:
        stored |= kept_apart(connection, keys - stored.keys())
    # A follow-up may quote a complaint of the same batch (a runner's claim).
    quoted = {item.message.follow_up_of for item in items if item.message.follow_up_of}
    known = _known_references(connection, quoted) | (
        quoted & {item.message.reference for item in items}
    )
    first: dict[str, PendingComplaint] = {}
    for item in items:
        key = item.raw.dedup_key
        if key in stored or key in first:
            continue
        if item.message.follow_up_of and item.message.follow_up_of not in known:
            # A well-formed reference we never issued: keep the text, drop the link.
            log.info("follow-up reference %s is unknown, not linked", item.message.follow_up_of)
            item.change(follow_up_of=None)
        first[key] = item
    new = list(first.values())
    linkable = [item.linkable() for item in new]
    links = resolve_customers(connection, linkable)
    for item, link in zip(new, links, strict=True):
        _apply_link(item, link)
    _insert(connection, new)
    record_contacts(connection, linkable, links)
    return [_outcome(item, stored, first) for item in items]


def _apply_link(item: PendingComplaint, link: Link) -> None:
    """The customer's key and earlier references; rendered again only when they change."""
    customer = item.message.customer
    related = list(link.related)
    if customer.key != link.key or customer.related != related:
        item.change(customer=customer.model_copy(update={"key": link.key, "related": related}))


def stored_under(connection: Connection, keys: Collection[str]) -> dict[str, Written]:
    """Complaints already recorded under these dedup keys."""
    if not keys:
        return {}
    # One key (most commits): "=" spares rendering an expanding IN each time.
    rows = (
        connection.execute(_STORED_ONE, {"key": next(iter(keys))})
        if len(keys) == 1
        else connection.execute(_STORED_MANY, {"keys": list(keys)})
    )
    return {
        key: Written(ComplaintMessage.model_validate_json(message), False, request_hash)
        for key, message, request_hash in rows
    }


def kept_apart(connection: Connection, keys: Collection[str]) -> dict[str, Written]:
    """Non-complaints the triage kept under these dedup keys (``triage`` rows)."""
    if not keys:
        return {}
    rows = connection.execute(
        select(TriageRow.dedup_key, TriageRow.message).where(TriageRow.dedup_key.in_(list(keys)))
    )
    return {
        key: Written(ComplaintMessage.model_validate_json(message), False, None)
        for key, message in rows
    }


def _known_references(connection: Connection, references: Collection[str | None]) -> set[str]:
    """The references we issued: complaints', and captures' not normalized yet.

    A capture's reference was told to the customer (250, 201, the SMS reply):
    a follow-up quoting it while another runner is still recording it (or
    before a replay does) links to it all the same.
    """
    wanted = [reference for reference in references if reference]
    if not wanted:
        return set()
    found = set(
        connection.scalars(select(ComplaintRow.reference).where(ComplaintRow.reference.in_(wanted)))
    )
    rest = [reference for reference in wanted if reference not in found]
    if rest:
        found |= set(
            connection.scalars(select(IntakeRow.reference).where(IntakeRow.reference.in_(rest)))
        )
    return found


def _outcome(
    item: PendingComplaint, stored: dict[str, Written], first: dict[str, PendingComplaint]
) -> Written:
    key = item.raw.dedup_key
    if key in stored:
        return stored[key]
    winner = first[key]
    return Written(winner.message, winner is item, winner.raw.request_hash)


def _insert(connection: Connection, items: Sequence[PendingComplaint]) -> None:
    if not items:
        return
    now = datetime.now(UTC)
    evidence, complaints, outbox = [], [], []
    for item in items:
        evidence_id = item.evidence_id
        if evidence_id is None:
            evidence_id = str(uuid.uuid4())
            evidence.append(_evidence_row(item, evidence_id, now))
        complaints.append(_complaint_row(item, evidence_id, now))
        outbox.append(_outbox_row(item, now))
    # Rows carry foreign keys: evidence, then complaints, then the outbox.
    if evidence:
        connection.execute(_INSERT_EVIDENCE, evidence)
    connection.execute(_INSERT_COMPLAINTS, complaints)
    connection.execute(_INSERT_OUTBOX, outbox)
    # Last: on PostgreSQL the chain's head stays locked until the commit.
    if evidence:
        append_to_chain(connection, evidence)


def _evidence_row(item: PendingComplaint, evidence_id: str, now: datetime) -> dict[str, Any]:
    return {**evidence_values(item.raw, item.message.evidence, evidence_id), "created_at": now}


def evidence_values(raw: RawInput, evidence: Evidence, evidence_id: str) -> dict[str, Any]:
    """The ``evidence`` row of one input (``created_at`` left to the caller or the default)."""
    return {
        "id": evidence_id,
        "channel": raw.channel.value,
        "sha256": evidence.sha256,
        "size": evidence.size,
        "content_type": raw.content_type,
        "stored_at": evidence.stored_at,
        "source_ids": dict(raw.source_ids),
        "message_id": evidence.message_id,
        "received_at": raw.received_at,
    }


def _complaint_row(item: PendingComplaint, evidence_id: str, now: datetime) -> dict[str, Any]:
    message = item.message
    return {
        "id": message.id,
        "reference": message.reference,
        "dedup_key": item.raw.dedup_key,
        "request_hash": item.raw.request_hash,
        "channel": message.channel.value,
        "origin": message.origin.value,
        "language": message.language.tag,
        "received_at": message.received_at,
        "ack_due_at": message.ack_due_at,
        "answer_due_at": message.answer_due_at,
        "follow_up_of": message.follow_up_of,
        "evidence_id": evidence_id,
        "message": item.message_json,
        "created_at": now,
    }


def _outbox_row(item: PendingComplaint, now: datetime) -> dict[str, Any]:
    return {
        "event_id": item.message.id,
        "complaint_id": item.message.id,
        "routing_key": routing_key_for(item.message),
        "payload": item.event_json,
        "content_type": EVENT_CONTENT_TYPE,
        "attempts": 0,
        "held": False,
        "available_at": item.available_at,
        "created_at": now,
    }
