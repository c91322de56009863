"""What a channel hands to the store: the raw input and a complaint draft.

A channel adapter builds a ``RawInput`` (the bytes exactly as received and the
identifiers its protocol gave them) and a ``ComplaintDraft`` (what it could
read from them). The normalizer pipeline fills in the draft (clean text,
language, contact, follow-up, deadlines); the store gives it an id and a
reference and turns it into the ``ComplaintMessage`` of the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from normalizer.contract import Channel, Customer, Language, Origin, ProductDetection
from normalizer.triage import TriageSignal, TriageVerdict


@dataclass(frozen=True)
class RawInput:
    """The evidence: bytes as received, before any interpretation."""

    channel: Channel
    data: bytes
    content_type: str
    received_at: datetime
    # One per source event; a repeated input with the same key is the same complaint.
    dedup_key: str
    source_ids: dict[str, Any] = field(default_factory=dict)
    # What the caller sent under the dedup key, to tell a retry from a reuse.
    request_hash: str | None = None
    # The bytes are in the blob store already, their folder fsynced (a capture's):
    # the commit need not settle them again.
    durable: bool = False


@dataclass(frozen=True)
class AttachmentDraft:
    name: str | None
    data: bytes
    declared_type: str | None = None
    content_type: str | None = None  # sniffed; filled by the pipeline when empty
    ocr_text: str | None = None


@dataclass
class ComplaintDraft:
    """A complaint being normalized; steps fill the optional fields in order."""

    channel: Channel
    received_at: datetime
    body: str
    origin: Origin = Origin.CUSTOMER
    subject: str | None = None
    customer: Customer = field(default_factory=Customer)
    language: Language | None = None
    declared_language: str | None = None
    product: str | None = None
    # How ``product`` was decided (``pipeline.tag_product``): declared or rules.
    product_detection: ProductDetection | None = None
    transaction_reference: str | None = None
    attachments: list[AttachmentDraft] = field(default_factory=list)
    follow_up_of: str | None = None
    ack_due_at: datetime | None = None
    answer_due_at: datetime | None = None
    # Channel facts for downstream (``ComplaintMessage.details``), e.g. e-mail's
    # ``authentication`` verdict and ``claimed_origin``.
    details: dict[str, Any] = field(default_factory=dict)
    # What the channel alone could tell of the input's kind (the spam filter's
    # verdict, list headers), and the kind the ``triage`` step decided.
    triage_signals: tuple[TriageSignal, ...] = ()
    triage: TriageVerdict | None = None
    # Media the channel announced but fetches later (Twilio MMS/WhatsApp):
    # attachments for triage's sake before they are downloaded.
    announced_media: int = 0
    # The input forwards another message (e-mail "Fwd:", an attached message):
    # a filter's verdict on the forwarded part does not make it spam.
    forwarded: bool = False
    # Given at capture (``gateway.store.captures``): the complaint's id and the
    # reference the sender was told. None: the store draws them.
    assigned_id: str | None = None
    assigned_reference: str | None = None
