"""A quarantined e-mail (IMAP, SMTP or an import), parsed again with today's parser and limits.

``gateway.ops.quarantine.replay`` -> **here** -> ``channels.email.intake``
(the same parsing and hand-off as the edges) -> a complaint or an
auto-reply event, dated from the mail's arrival. A mail still refused
returns ``ReplayResult(ok=False)`` and stays in quarantine.
"""

from __future__ import annotations

from datetime import datetime

from channels.email.intake import (
    RECEIVED_AT,
    MailArrival,
    MailOutcome,
    ingest_mail,
    parse_arrival,
)
from channels.email.smtp_policy import vouches_for_peer
from channels.email.staged import normalize_mail_captures
from gateway.lib.normalize_runner import replay_capture
from gateway.lib.services import Services
from gateway.store.quarantine import QuarantineItem, ReplayResult
from normalizer.email import EmailRejected


def replay_email(services: Services, item: QuarantineItem) -> ReplayResult:
    """An e-mail (IMAP, SMTP or import) parsed again with today's parser and limits."""
    ids = {key: value for key, value in item.source_ids.items() if key != RECEIVED_AT}
    peer = ids.get("smtp_peer")
    arrival = MailArrival(
        raw=services.store.blobs.get(item.stored_at),
        received_at=arrival_time(item),
        source_ids={**ids, "replayed_from": item.id},
        # Over SMTP, Authentication-Results count only from a peer that is our MX (S12).
        trust_authentication_results=(
            vouches_for_peer(services.settings, str(peer)) if "smtp_peer" in ids else None
        ),
    )
    try:
        parse_arrival(services.settings, arrival)
    except EmailRejected as exc:
        return ReplayResult(False, f"{exc.code}: {exc.reason}")
    replayed = replay_capture(services, item, normalize_mail_captures)
    if replayed is not None:
        return replayed
    result = ingest_mail(services, arrival)
    if result.outcome is MailOutcome.AUTO_REPLY:
        return ReplayResult(True, "recorded as an auto-reply event")
    if result.outcome is MailOutcome.BOUNCE:
        return ReplayResult(
            True, "recorded as the bounce of an acknowledgement", reference=result.reference
        )
    if result.outcome is MailOutcome.TRIAGED:
        return ReplayResult(True, "kept as a non-complaint, to sort", reference=result.reference)
    return ReplayResult(
        True, "complaint recorded", complaint_id=result.complaint_id, reference=result.reference
    )


def arrival_time(item: QuarantineItem) -> datetime:
    """When the mail arrived, as kept with it; the quarantine's own time for items kept before."""
    kept = item.source_ids.get(RECEIVED_AT)
    if isinstance(kept, str):
        try:
            moment = datetime.fromisoformat(kept)
        except ValueError:
            return item.created_at
        if moment.tzinfo is not None:
            return moment
    return item.created_at
