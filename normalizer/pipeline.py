"""Normalization: an ordered list of small named steps over a ``ComplaintDraft``.

Every channel runs the same pipeline after it has read what it can from its
protocol. Each step is a plain function ``(draft, context) -> None`` that can
be tested alone; the order is data (``STEPS``), so adding a step is one
function and one line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import magic

from normalizer.contract import Origin, ProductDetection
from normalizer.deadlines import compute_deadlines
from normalizer.draft import ComplaintDraft
from normalizer.email.attachments import sanitize_filename
from normalizer.language import declared_language, detect_text_language
from normalizer.product import detect_product
from normalizer.reference import find_references
from normalizer.triage import COMPLAINT, TRIAGED_CHANNELS, decide

if TYPE_CHECKING:
    from config.settings import Settings

# C0/C1 controls other than tab and newline say nothing and break consumers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BLANK_RUN = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class PipelineContext:
    zone: str = "Africa/Casablanca"
    ack_days: int = 10
    answer_days: int = 40


def pipeline_context(settings: Settings) -> PipelineContext:
    """The pipeline's context from the settings (time zone, legal delays)."""
    return PipelineContext(
        zone=settings.timezone, ack_days=settings.ack_days, answer_days=settings.answer_days
    )


Step = Callable[[ComplaintDraft, PipelineContext], None]


def clean_text(text: str) -> str:
    """NFC, Unix newlines, no control characters, no trailing blanks, no runs of blank lines."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip()


def _one_line(value: str | None) -> str | None:
    return (" ".join(clean_text(value).split()) or None) if value is not None else None


def clean_fields(draft: ComplaintDraft, _context: PipelineContext) -> None:
    """Every free-text field the customer typed, not only the body: a NUL in a name
    breaks consumers (and PostgreSQL) just as well."""
    draft.body = clean_text(draft.body)
    if draft.subject is not None:
        draft.subject = clean_text(draft.subject).replace("\n", " ") or None
    address = draft.customer.postal_address
    draft.customer = draft.customer.model_copy(
        update={
            "name": _one_line(draft.customer.name),
            "postal_address": (clean_text(address) or None) if address is not None else None,
        }
    )
    draft.product = _one_line(draft.product)
    draft.transaction_reference = _one_line(draft.transaction_reference)


def safe_attachment_names(draft: ComplaintDraft, _context: PipelineContext) -> None:
    """Whatever the channel: no directories, controls or bidi tricks in a stored name."""
    draft.attachments = [
        replace(item, name=sanitize_filename(item.name)) for item in draft.attachments
    ]


def sniff_attachments(draft: ComplaintDraft, _context: PipelineContext) -> None:
    """The type of each attachment comes from its bytes, never from what the sender claimed."""
    draft.attachments = [
        item
        if item.content_type
        else replace(item, content_type=magic.from_buffer(item.data[:65536], mime=True))
        for item in draft.attachments
    ]


def tag_language(draft: ComplaintDraft, _context: PipelineContext) -> None:
    if draft.language is not None:
        return
    if draft.declared_language:
        draft.language = declared_language(draft.declared_language)
        return
    text = draft.body if draft.body else (draft.subject or "")
    draft.language = detect_text_language(text)


def product_detection_for(
    product: str | None, subject: str | None, body: str
) -> tuple[str | None, ProductDetection | None]:
    """A declared product as is; otherwise the product rules' guess on the text, or nothing."""
    if product:
        return product, ProductDetection(method="declared", confidence=1.0)
    guess = detect_product(f"{subject or ''}\n{body}")
    if guess is None:
        return None, None
    detection = ProductDetection(
        method=guess.method, confidence=guess.confidence, matched=list(guess.matched)
    )
    return guess.code, detection


def tag_product(draft: ComplaintDraft, _context: PipelineContext) -> None:
    """The product the customer or partner named, else the one the text names (rules)."""
    draft.product, draft.product_detection = product_detection_for(
        draft.product, draft.subject, draft.body
    )


def find_follow_up(draft: ComplaintDraft, _context: PipelineContext) -> None:
    """A reference quoted in the subject (first) or body makes this a follow-up."""
    if draft.follow_up_of is not None:
        return
    found = find_references(f"{draft.subject or ''}\n{draft.body}")
    draft.follow_up_of = found[0] if found else None


def triage(draft: ComplaintDraft, _context: PipelineContext) -> None:
    """Complaint, or a non-complaint of a kind (spam, thanks, opt-out...); unsure: complaint.

    Deadlines are still stamped after it: a person may turn a non-complaint
    into a complaint, whose clock started at the original receipt.
    """
    if draft.triage is not None:
        return
    if draft.channel not in TRIAGED_CHANNELS:
        draft.triage = COMPLAINT
        return
    text = f"{draft.subject or ''}\n{draft.body}"
    draft.triage = decide(
        text,
        signals=draft.triage_signals,
        has_attachments=bool(draft.attachments) or draft.announced_media > 0,
        about_a_customer=_about_a_customer(draft),
    )


def _about_a_customer(draft: ComplaintDraft) -> str | None:
    """What ties an input to a customer's matter, whatever a filter thinks of its text."""
    if draft.origin is not Origin.CUSTOMER:
        return f"forwarded by {draft.origin.value}"
    if draft.follow_up_of is not None:
        return f"follow-up of {draft.follow_up_of}"
    if draft.forwarded:
        return "a message forwarded by its recipient"
    return None


def stamp_deadlines(draft: ComplaintDraft, context: PipelineContext) -> None:
    deadlines = compute_deadlines(
        draft.received_at,
        zone=context.zone,
        ack_days=context.ack_days,
        answer_days=context.answer_days,
    )
    draft.ack_due_at = deadlines.ack_due_at
    draft.answer_due_at = deadlines.answer_due_at


STEPS: tuple[Step, ...] = (
    clean_fields,
    safe_attachment_names,
    sniff_attachments,
    tag_language,
    tag_product,
    find_follow_up,
    triage,
    stamp_deadlines,
)


def normalize(draft: ComplaintDraft, context: PipelineContext | None = None) -> ComplaintDraft:
    """Run every step in order; the draft is changed in place and returned."""
    context = context or PipelineContext()
    for step in STEPS:
        step(draft, context)
    return draft
