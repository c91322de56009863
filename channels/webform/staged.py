"""The web form in two stages: the edge captures the post, a runner records the complaint.

browser POST -> ``routes`` (guards, honeypot, validation, complaint limit)
-> **capture_post** (the raw multipart body, its receipt time, the form
token's nonce, the dedup key of ``intake.form_input``; one group commit) ->
confirmation page with the capture's reference and deadlines ... a
normalizer runner -> **normalize_webform_captures** (the body parsed again,
checked again with the form's limits, the draft dated from the capture,
then one group commit of the batch's complaints, each with its capture's id
and reference) -> what each capture became.

The capture's dedup key is the complaint's: a reloaded or double-clicked
post (same token nonce, same content) finds the first capture, or a
complaint recorded before the form was staged, and shows its reference. A
body that no longer passes the checks (a limit lowered meanwhile) is
quarantined, linked to its capture; its replay goes through this step again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from channels.handoff import CaptureRefused, hand_off_captures, is_triaged
from channels.webform.attachments import InspectionsBusy
from channels.webform.form import build_draft, validate
from channels.webform.intake import form_input, form_limits, read_post
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.captures import Capture, Captured, Finished
from gateway.store.intake import IntakeResult
from normalizer.contract import Channel
from normalizer.draft import ComplaintDraft, RawInput

log = logging.getLogger("intake.webform")

# The form token's nonce, kept with the capture: half of the dedup key the runner writes again.
NONCE = "nonce"
INVALID_FIELD = "invalid_field"


class PostRefused(CaptureRefused):
    """A captured post that no longer passes the form's checks (quarantined, replayable)."""


def capture_post(services: Services, raw_input: RawInput, nonce: str) -> Captured:
    """The post durable as received, under the complaint's dedup key; its reference."""
    captured = services.store.captures.capture(
        Capture(
            channel=Channel.WEBFORM.value,
            data=raw_input.data,
            content_type=raw_input.content_type,
            received_at=raw_input.received_at,
            dedup_key=raw_input.dedup_key,
            source_ids={**raw_input.source_ids, NONCE: nonce},
        )
    )
    if captured.created:
        log.info("captured complaint %s via the web form", captured.reference)
    return captured


def post_of(services: Services, captured: Captured) -> tuple[RawInput, ComplaintDraft]:
    """The complaint of a captured post, as the edge read it; ``PostRefused`` if it no longer can.

    The honeypot is not looked at again: the edge refused those before capturing.
    """
    raw = services.store.captures.data_of(captured)
    post = read_post(raw, captured.content_type)
    try:
        checked = validate(post.sub, form_limits(services.settings))
    except InspectionsBusy as exc:
        # Our failure, not the post's: the runner gives the row back for a retry.
        raise StoreUnavailable("attachment checks busy") from exc
    if checked.errors:
        codes = ", ".join(f"{error.field}:{error.code}" for error in checked.errors)
        raise PostRefused(INVALID_FIELD, codes)
    ids = dict(captured.source_ids)
    nonce = str(ids.pop(NONCE, None) or post.nonce or f"capture-{captured.id}")
    raw_input = form_input(
        raw,
        captured.content_type,
        nonce,
        post.sub,
        received_at=captured.received_at,
        source_ids=ids,
    )
    draft = build_draft(post.sub, checked, captured.received_at)
    draft.assigned_id = captured.id
    draft.assigned_reference = captured.reference
    return raw_input, draft


def normalize_webform_captures(
    services: Services, batch: Sequence[Captured]
) -> list[Finished | Exception]:
    """The runner's step for the form: each post read again, the batch in one group commit."""
    return hand_off_captures(services, batch, post_of, _finished)


def _finished(
    captured: Captured, _raw: RawInput, result: IntakeResult | Exception
) -> Finished | Exception:
    if isinstance(result, Exception):
        return result
    message = result.message
    if is_triaged(message):  # kept apart by the triage, under the capture's reference
        return Finished(captured.id, "triaged", message.id)
    first = message.id == captured.id
    return Finished(captured.id, "complaint" if first else "repeat", message.id)
