"""A quarantined partner submission, validated again under the same client and key.

``gateway.ops.quarantine.replay`` -> **here** -> ``channels.api.intake`` (the
edge's own validation and ``RawInput``) -> ``channels.handoff``: a replayed
body is recorded exactly as if it had been accepted the first time, dated
from its first receipt.

A body the edge had captured (a 201 given) and the runner quarantined
(``capture_id``) goes through the runner's step again
(``staged.normalize_api_captures``): the capture's reference and receipt time.
"""

from __future__ import annotations

from datetime import timedelta

from channels.api.intake import call_draft, linked_call, read_submission, submission_input
from channels.api.staged import normalize_api_captures
from channels.handoff import hand_off
from gateway.lib.http.errors import ApiError
from gateway.lib.normalize_runner import replay_capture
from gateway.lib.services import Services
from gateway.store.quarantine import QuarantineItem, ReplayResult


def replay_api(services: Services, item: QuarantineItem) -> ReplayResult:
    """A partner's JSON body validated again, under the same client and Idempotency-Key."""
    replayed = replay_capture(services, item, normalize_api_captures)
    if replayed is not None:
        return replayed
    raw = services.store.blobs.get(item.stored_at)
    client = services.store.api_keys.by_name(str(item.source_ids.get("api_client") or ""))
    if client is None:
        return ReplayResult(False, "the API client of this input no longer exists")
    try:
        # The client's scopes now: an operator may have granted the one it lacked.
        backdate = timedelta(days=services.settings.max_backdate_days)
        draft = read_submission(raw, item.created_at, client, backdate)
        call_sid, dated = linked_call(raw)
        if call_sid is not None:
            call = services.store.calls().get(call_sid)
            draft = call_draft(draft, call.started_at if call else None, dated)
    except ApiError as exc:
        return ReplayResult(False, f"{exc.code}: {exc.message}")
    key = item.source_ids.get("idempotency_key")
    raw_input = submission_input(
        client,
        raw,
        key,
        draft,
        services.settings.timezone,
        call_sid=call_sid,
        replayed_from=item.id,
    )
    result = hand_off(services, raw_input, draft)
    if call_sid is not None:
        services.store.calls().link_typed(call_sid)
    return ReplayResult(
        True,
        "complaint recorded" if result.created else "already recorded",
        complaint_id=result.message.id,
        reference=result.message.reference,
    )
