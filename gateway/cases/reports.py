"""One status report, from either path, into the store; the same rules for both.

``routes`` (HTTP) and ``worker`` (the queue) -> **record** ->
``Store.cases.report`` (``StatusRefused`` 404/409/422 when the complaint
cannot take it).

A reference an edge gave (a capture) is a complaint only once a runner has
recorded it: until then a report for it is refused 409 ``not_recorded_yet``
(try again in a second), and ``quarantined`` if the runner could not record
it; 404 stays for a reference nobody gave.
"""

from __future__ import annotations

import logging

from gateway.lib.services import Services
from gateway.store.captures import CAPTURED
from gateway.store.captures import QUARANTINED as CAPTURE_QUARANTINED
from gateway.store.cases import Reported, StatusRefused, StatusReport
from normalizer.status import StatusReportIn

log = logging.getLogger("intake.cases")


NOT_RECORDED_YET = "not_recorded_yet"
QUARANTINED = "quarantined"


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
    entry = StatusReport(
        status=report.status,
        at=report.at,
        note=report.note,
        answer_due_at=report.answer_due_at,
        reason=reason,
    )
    try:
        outcome = services.store.cases.report(
            reference, entry, source=source, actor=actor, event_id=event_id
        )
    except StatusRefused as exc:
        if exc.http_status != 404 or not _normalized_since(services, reference):
            raise
        # The runner recorded the complaint between the two looks.
        outcome = services.store.cases.report(
            reference, entry, source=source, actor=actor, event_id=event_id
        )
    if outcome.created:
        log.info("complaint %s is now %s (%s)", reference, report.status, source)
    return outcome


def _normalized_since(services: Services, reference: str) -> bool:
    """Whether a capture gave ``reference`` and is done; ``StatusRefused`` 409 if it is pending.

    False: no capture gave it (the 404 stands), or its capture became no
    complaint (a repeat of another, a non-complaint kept by the triage).
    """
    captures = services.store.captures
    captured = captures.by_reference(reference)
    state = captures.state_of(captured.id) if captured is not None else None
    if state is None:
        return False
    if state[0] == CAPTURED:
        raise StatusRefused(
            409,
            NOT_RECORDED_YET,
            f"complaint {reference} is received but not recorded yet; try again shortly",
        )
    if state[0] == CAPTURE_QUARANTINED:
        raise StatusRefused(
            409,
            QUARANTINED,
            f"complaint {reference} is received but kept in quarantine for an operator",
        )
    return state[1] == "complaint"
