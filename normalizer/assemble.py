"""The last step: a normalized draft plus its identity becomes a ``ComplaintMessage``."""

from __future__ import annotations

from datetime import datetime

from normalizer.contract import Attachment, ComplaintMessage, Evidence, Language, Triage
from normalizer.draft import ComplaintDraft
from normalizer.errors import OurFailure
from normalizer.triage import TriageVerdict


class DraftIncomplete(OurFailure, ValueError):
    """The pipeline did not run on this draft (no language or deadlines)."""


def assemble_message(
    draft: ComplaintDraft,
    *,
    complaint_id: str,
    reference: str,
    evidence: Evidence,
    attachments: list[Attachment],
    processed_at: datetime,
) -> ComplaintMessage:
    if draft.ack_due_at is None or draft.answer_due_at is None:
        raise DraftIncomplete("deadlines not stamped: run normalizer.pipeline.normalize first")
    language: Language | None = draft.language
    if language is None:
        raise DraftIncomplete("language not tagged: run normalizer.pipeline.normalize first")
    return ComplaintMessage(
        id=complaint_id,
        reference=reference,
        channel=draft.channel,
        origin=draft.origin,
        received_at=draft.received_at,
        ack_due_at=draft.ack_due_at,
        answer_due_at=draft.answer_due_at,
        processed_at=processed_at,
        language=language,
        customer=draft.customer,
        subject=draft.subject,
        body=draft.body,
        product=draft.product,
        product_detection=draft.product_detection,
        transaction_reference=draft.transaction_reference,
        attachments=attachments,
        follow_up_of=draft.follow_up_of,
        evidence=evidence,
        triage=None if draft.triage is None else triage_of(draft.triage),
        details=dict(draft.details),
    )


def triage_of(verdict: TriageVerdict) -> Triage:
    """The contract's form of a triage verdict."""
    return Triage(
        kind=verdict.kind.value,
        method=verdict.method,
        reasons=list(verdict.reasons),
        score=verdict.score,
    )
