"""One status report, from either path, into the store; the same rules for both.

``routes`` (HTTP) and ``worker`` (the queue) -> **record** ->
``Store.cases.report`` (``StatusRefused`` 404/409/422 when the complaint
cannot take it).
"""

from __future__ import annotations

import logging

from gateway.lib.services import Services
from gateway.store.cases import Reported, StatusReport
from normalizer.status import StatusReportIn

log = logging.getLogger("intake.cases")


def record(
    services: Services,
    reference: str,
    report: StatusReportIn,
    *,
    source: str,
    actor: str | None,
    event_id: str | None = None,
) -> Reported:
    """Record ``report`` for the complaint ``reference``; a repeat changes nothing."""
    reason = report.reason or ("investigation" if report.status == "extended" else None)
    outcome = services.store.cases.report(
        reference,
        StatusReport(
            status=report.status,
            at=report.at,
            note=report.note,
            answer_due_at=report.answer_due_at,
            reason=reason,
        ),
        source=source,
        actor=actor,
        event_id=event_id,
    )
    if outcome.created:
        log.info("complaint %s is now %s (%s)", reference, report.status, source)
    return outcome
