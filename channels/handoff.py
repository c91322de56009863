"""The hand-off every channel calls: normalize a draft, record it durably.

channel edge -> **hand_off** (normalize, then ``ComplaintStore.record_complaint``,
which group-commits with concurrent callers) -> the channel answers its protocol.

Blocking (database and disk); HTTP handlers call it from a worker thread. A
repeated input is found by the store inside its commit (one dedup look-up),
so a repeat is normalized again: cheap next to a second look-up on every
new complaint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from gateway.lib.logs import complaint_context
from gateway.lib.normalize_runner import quarantine_capture
from gateway.lib.services import Services
from gateway.store.captures import Captured, Finished
from gateway.store.intake import IntakeResult
from normalizer.contract import ComplaintMessage
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.pipeline import normalize

log = logging.getLogger("intake.channels")


def hand_off(
    services: Services,
    raw: RawInput,
    draft: ComplaintDraft,
    available_at: datetime | None = None,
) -> IntakeResult:
    """Normalize and commit; returns only after evidence, complaint and outbox are durable.

    ``available_at`` holds publication until then (a call waiting for its transcript).
    """
    normalize(draft, services.pipeline)
    if _not_a_complaint(draft):
        return services.store.triage.record(raw, draft)
    result = services.store.complaints.record_complaint(raw, draft, available_at=available_at)
    _log_result(result)
    return result


def _not_a_complaint(draft: ComplaintDraft) -> bool:
    """The triage named a kind: kept apart, published as ``event.triage.<kind>``."""
    return draft.triage is not None and not draft.triage.is_complaint


def is_triaged(message: ComplaintMessage) -> bool:
    """A result that is not a complaint: the channel sends no "complaint recorded" reply."""
    return message.triage is not None and message.triage.kind != "complaint"


def hand_off_many(
    services: Services, items: Sequence[tuple[RawInput, ComplaintDraft]]
) -> list[IntakeResult | Exception]:
    """``hand_off`` for a batch (an IMAP fetch): one commit, one outcome per item.

    An item whose normalization or commit failed gets its exception as its
    outcome; the others are committed all the same.
    """
    context = services.pipeline
    outcomes: list[IntakeResult | Exception | None] = []
    ready: list[tuple[RawInput, ComplaintDraft]] = []
    for raw, draft in items:
        try:
            normalize(draft, context)
            if _not_a_complaint(draft):  # rare: kept on its own, outside the group commit
                outcomes.append(services.store.triage.record(raw, draft))
                continue
        except Exception as exc:  # a bug on this one input: the others go on
            outcomes.append(exc)
            continue
        outcomes.append(None)
        ready.append((raw, draft))
    committed = iter(services.store.complaints.record_complaints(ready))
    results = [next(committed) if outcome is None else outcome for outcome in outcomes]
    for result in results:
        if isinstance(result, IntakeResult) and not is_triaged(result.message):
            _log_result(result)
    return results


class CaptureRefused(Exception):
    """A captured input its channel's step will not record: quarantined, replayable."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def hand_off_captures(
    services: Services,
    batch: Sequence[Captured],
    read: Callable[[Services, Captured], tuple[RawInput, ComplaintDraft]],
    finish: Callable[[Captured, RawInput, IntakeResult | Exception], Finished | Exception],
) -> list[Finished | Exception]:
    """A runner's step on ``hand_off_many``: each capture ``read``, the batch in one commit.

    ``read`` gives the input and its draft (with the capture's id and
    reference) or raises ``CaptureRefused`` (quarantined, linked to its
    capture); anything else it raises is that capture's outcome (the runner
    quarantines a bug, gives a store failure back). ``finish`` says what the
    commit made of each capture.
    """
    outcomes: list[Finished | Exception | None] = []
    ready: list[tuple[int, Captured, RawInput, ComplaintDraft]] = []
    for captured in batch:
        try:
            raw, draft = read(services, captured)
        except CaptureRefused as exc:
            outcomes.append(quarantine_capture(services, captured, exc.code, exc.reason))
            continue
        except Exception as exc:  # this input's failure; the others go on
            outcomes.append(exc)
            continue
        ready.append((len(outcomes), captured, raw, draft))
        outcomes.append(None)
    committed = hand_off_many(services, [(raw, draft) for _i, _c, raw, draft in ready])
    for (index, captured, raw, _draft), result in zip(ready, committed, strict=True):
        outcomes[index] = finish(captured, raw, result)
    return [outcome for outcome in outcomes if outcome is not None]


def _log_result(result: IntakeResult) -> None:
    with complaint_context(result.message.id):
        log.info(
            "%s complaint %s via %s (%s)",
            "recorded" if result.created else "repeated",
            result.message.reference,
            result.message.channel.value,
            result.message.language.tag,
        )
