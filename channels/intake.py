"""The hand-off every channel calls: normalize a draft, record it durably.

Blocking (database and disk); HTTP handlers call it from a worker thread.
"""

from __future__ import annotations

import logging

from gateway.logs import complaint_context
from gateway.services import Services
from gateway.store.intake import IntakeResult
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.pipeline import normalize

log = logging.getLogger("intake.channels")


def hand_off(services: Services, raw: RawInput, draft: ComplaintDraft) -> IntakeResult:
    """Normalize and commit; returns only after evidence, complaint and outbox are durable."""
    existing = services.store.complaints.find_by_dedup_key(raw.dedup_key, raw.request_hash)
    if existing is not None:
        return IntakeResult(existing, created=False)
    normalize(draft, services.pipeline)
    result = services.store.complaints.record_complaint(raw, draft)
    with complaint_context(result.message.id):
        log.info(
            "%s complaint %s via %s (%s)",
            "recorded" if result.created else "repeated",
            result.message.reference,
            result.message.channel.value,
            result.message.language.tag,
        )
    return result
