"""A quarantined e-mail (IMAP, SMTP or an import), parsed again with today's parser and limits.

``gateway.ops.quarantine.replay`` -> **here** -> ``channels.email.intake``
(the same parsing and hand-off as the edges) -> a complaint or an
auto-reply event, dated from the mail's arrival. A mail still refused
returns ``ReplayResult(ok=False)`` and stays in quarantine.
"""

from __future__ import annotations

from channels.email.intake import MailArrival, MailOutcome, ingest_mail, parse_arrival
from gateway.lib.services import Services
from gateway.store.quarantine import QuarantineItem, ReplayResult
from normalizer.email import EmailRejected


def replay_email(services: Services, item: QuarantineItem) -> ReplayResult:
    """An e-mail (IMAP, SMTP or import) parsed again with today's parser and limits."""
    arrival = MailArrival(
        raw=services.store.blobs.get(item.stored_at),
        received_at=item.created_at,
        source_ids={**item.source_ids, "replayed_from": item.id},
    )
    try:
        parse_arrival(services.settings, arrival)
    except EmailRejected as exc:
        return ReplayResult(False, f"{exc.code}: {exc.reason}")
    result = ingest_mail(services, arrival)
    if result.outcome is MailOutcome.AUTO_REPLY:
        return ReplayResult(True, "recorded as an auto-reply event")
    return ReplayResult(
        True, "complaint recorded", complaint_id=result.complaint_id, reference=result.reference
    )
