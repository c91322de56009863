"""A quarantined web form post, checked again and recorded, dated from its first receipt.

``gateway.ops.quarantine.replay`` -> **here**. A post the edge had captured
(its confirmation page shown) and the runner quarantined (``capture_id``)
goes through the runner's step again (``staged.normalize_webform_captures``,
``normalize_runner.replay_capture``): the capture's reference and receipt
time. A post quarantined before the form was staged goes the old way: the
form's own checks (``form.validate`` with ``intake.form_limits``) ->
``intake.form_input`` -> ``channels.handoff``. The honeypot is not checked
again: the operator who replays a post has judged it human.
"""

from __future__ import annotations

from channels.handoff import hand_off
from channels.webform.form import build_draft, validate
from channels.webform.intake import form_input, form_limits, read_post
from channels.webform.staged import normalize_webform_captures
from gateway.lib.normalize_runner import replay_capture
from gateway.lib.services import Services
from gateway.store.quarantine import QuarantineItem, ReplayResult


def replay_webform(services: Services, item: QuarantineItem) -> ReplayResult:
    """A web form post checked again (not the honeypot: the operator judged it human).

    A refused post kept as its head only never gets here: ``gateway.ops``
    refuses to reprocess any such item, whatever its channel.
    """
    replayed = replay_capture(services, item, normalize_webform_captures)
    if replayed is not None:
        return replayed
    body = services.store.blobs.get(item.stored_at)
    post = read_post(body, item.content_type)
    checked = validate(post.sub, form_limits(services.settings))
    if checked.errors:
        codes = ", ".join(f"{error.field}:{error.code}" for error in checked.errors)
        return ReplayResult(False, f"invalid_field: {codes}")
    nonce = post.nonce or f"quarantine-{item.id}"
    source_ids = {**item.source_ids, "replayed_from": item.id}
    raw = form_input(
        body, item.content_type, nonce, post.sub, received_at=item.created_at, source_ids=source_ids
    )
    result = hand_off(services, raw, build_draft(post.sub, checked, item.created_at))
    return ReplayResult(
        True,
        "complaint recorded" if result.created else "already recorded",
        complaint_id=result.message.id,
        reference=result.message.reference,
    )
