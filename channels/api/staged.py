"""The partner API in two stages: the edge captures the body, a runner records the complaint.

``POST /v1/complaints`` (auth, scopes, the body's schema, the linked call)
-> **capture_submission** (the body, its receipt time, the client and key,
the dedup key and request hash of ``intake.submission_input``; one group
commit) -> 201 with the capture's reference ... a normalizer runner ->
**normalize_api_captures** (the draft rebuilt from the stored body under the
client's current key, then one group commit of the batch's complaints, each
with its capture's id and reference) -> what each capture became.

The capture's dedup key is the complaint's (``intake.dedup_key_for``): a
retry, before or after the runner, answers the first reference, and so does a
repeat of a complaint recorded before the API was staged. A body the runner
refuses (its client deleted, a scope taken back) is quarantined, linked to
its capture; its replay goes through this step again (``replay``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from channels.api.intake import call_draft, linked_call, read_submission, submission_input
from channels.handoff import CaptureRefused, hand_off_captures
from gateway.lib.capture_queue import CaptureQueue
from gateway.lib.http.errors import ApiError
from gateway.lib.normalize_runner import quarantine_capture
from gateway.lib.services import Services
from gateway.store import IdempotencyConflict
from gateway.store.captures import Capture, Captured, Finished
from gateway.store.intake import IntakeResult
from normalizer.contract import Channel
from normalizer.draft import ComplaintDraft, RawInput

log = logging.getLogger("intake.channels")

CALL_HAS_COMPLAINT = "call_has_complaint"
# When the edge accepted the body: the scopes' "now" when the runner reads it again.
SUBMITTED_AT = "submitted_at"


def submission_capture(raw_input: RawInput, submitted_at: datetime) -> Capture:
    """What the edge makes durable of a body: as received, under the complaint's dedup key."""
    return Capture(
        channel=Channel.API.value,
        data=raw_input.data,
        content_type=raw_input.content_type,
        received_at=raw_input.received_at,
        dedup_key=raw_input.dedup_key,
        source_ids={**raw_input.source_ids, SUBMITTED_AT: submitted_at.isoformat()},
        request_hash=raw_input.request_hash,
    )


async def capture_submission(
    writer: CaptureQueue, raw_input: RawInput, submitted_at: datetime
) -> Captured:
    """The body durable as received (the writer's commit); its reference."""
    captured = await writer.capture(submission_capture(raw_input, submitted_at))
    if captured.created:
        log.info(
            "captured complaint %s via api (client %s)",
            captured.reference,
            raw_input.source_ids.get("api_client"),
        )
    return captured


def submission_of(services: Services, captured: Captured) -> tuple[RawInput, ComplaintDraft]:
    """The complaint of a captured body, as the edge read it; ``ApiError`` if it no longer can."""
    ids = captured.source_ids
    client = services.store.api_keys.by_name(str(ids.get("api_client") or ""))
    if client is None:
        raise ApiError(403, "unknown_client", "the API client of this input no longer exists")
    raw = services.store.captures.data_of(captured)
    now = _moment(ids.get(SUBMITTED_AT)) or captured.received_at
    backdate = timedelta(days=services.settings.max_backdate_days)
    draft = read_submission(raw, now, client, backdate)
    call_sid, dated = linked_call(raw)
    if call_sid is not None:
        call = services.store.calls().get(call_sid)
        draft = call_draft(draft, call.started_at if call else None, dated)
    # The receipt the edge answered with (and the deadlines it gave) is the capture's.
    draft.received_at = captured.received_at
    key = ids.get("idempotency_key")
    raw_input = submission_input(
        client,
        raw,
        str(key) if key else None,
        draft,
        services.settings.timezone,
        call_sid=call_sid,
    )
    draft.assigned_id = captured.id
    draft.assigned_reference = captured.reference
    return raw_input, draft


def normalize_api_captures(
    services: Services, batch: Sequence[Captured]
) -> list[Finished | Exception]:
    """The runner's step for the API: each body read again, the batch in one group commit."""

    def read(services: Services, captured: Captured) -> tuple[RawInput, ComplaintDraft]:
        try:
            return submission_of(services, captured)
        except ApiError as exc:  # refused in the API's terms: kept, replayable
            raise CaptureRefused(exc.code, exc.message) from exc

    def finish(
        captured: Captured, raw_input: RawInput, result: IntakeResult | Exception
    ) -> Finished | Exception:
        return _finished(services, captured, raw_input, result)

    return hand_off_captures(services, batch, read, finish)


def _finished(
    services: Services,
    captured: Captured,
    raw_input: RawInput,
    result: IntakeResult | Exception,
) -> Finished | Exception:
    call_sid = raw_input.source_ids.get("call_sid")
    if isinstance(result, IdempotencyConflict):  # the call's complaint came in meanwhile
        existing = result.existing.reference
        return quarantine_capture(
            services, captured, CALL_HAS_COMPLAINT, f"the call already made complaint {existing}"
        )
    if isinstance(result, Exception):
        return result
    message = result.message
    if call_sid and not result.created and message.evidence.api_client is None:
        # The caller's own recorded message became the call's complaint first.
        return quarantine_capture(
            services,
            captured,
            CALL_HAS_COMPLAINT,
            f"the call already made complaint {message.reference}",
        )
    if call_sid:
        services.store.calls().link_typed(str(call_sid))
    first = message.id == captured.id
    return Finished(captured.id, "complaint" if first else "repeat", message.id)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
