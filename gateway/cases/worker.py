"""The case worker: consume ``complaints.status``, send the notices of a longer delay.

case management -> exchange ``complaints``, routing key ``status.<status>``
-> queue ``complaints.status`` -> **this loop** -> ``judge`` ->
``reports.record``; beside it, a poll sends the pending notices
(``notices.Notifier``).

Each delivery is acknowledged to the broker only once its outcome is
durable: recorded (or a repeat, which changes nothing: the same complaint,
status and ``at``), or quarantined with its reason (not JSON, not a
``ma.cashplus.complaint.status.v1`` message, an unknown reference, a
transition the complaint cannot take, ``at`` out of bounds). A report for
a reference an edge gave that no runner has recorded yet goes back to the
queue and is tried again after a pause, as for our own failures. A quarantined
report is never lost: ``intake quarantine show ID --raw`` gives its bytes,
to publish again once its cause is fixed. Our failures (store unavailable) put
the delivery back and the loop waits, longer each time. A message whose
``type`` is another (a later event type on the same binding) is
acknowledged and ignored, as the open-v1 rule asks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kombu import Queue
from kombu.message import Message
from pydantic import ValidationError

from gateway.cases.notices import Notifier
from gateway.cases.reports import NOT_RECORDED_YET, record
from gateway.lib.queue_worker import QueueWorker
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.cases import StatusRefused
from normalizer.status import STATUS_EVENT_TYPE, ComplaintStatusEvent
from router.broker import topology_for

log = logging.getLogger("intake.cases")

NOTICE_POLL_SECONDS = 5.0
# The quarantine's channel name of a refused status message.
QUARANTINE_CHANNEL = "status"
CONTENT_TYPE = "application/cloudevents+json"


@dataclass(frozen=True)
class Judged:
    """What became of one message: ``done`` (recorded, a repeat, ignored) or refused, and why."""

    done: bool
    code: str = ""
    reason: str = ""
    reference: str | None = None
    complaint_id: str | None = None


def judge(services: Services, body: bytes) -> Judged:
    """Record one status message; raises only our own failures (``StoreUnavailable``)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        return Judged(False, "invalid_json", f"not JSON: {exc}")
    if isinstance(document, dict) and document.get("type") not in (None, STATUS_EVENT_TYPE):
        log.info("status queue: ignoring an event of type %.100s", document.get("type"))
        return Judged(True, "ignored")
    try:
        event = ComplaintStatusEvent.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Judged(False, "invalid_message", f"{where}: {first['msg']}"[:500])
    data = event.data
    try:
        outcome = record(
            services,
            data.reference,
            data,
            source="queue",
            actor=event.source[:255],
            event_id=event.id,
        )
    except StatusRefused as exc:
        return Judged(False, exc.code, str(exc), reference=data.reference)
    return Judged(
        True,
        "recorded" if outcome.created else "repeat",
        reference=data.reference,
        complaint_id=outcome.state.complaint_id,
    )


class CaseWorker(QueueWorker):
    name = "case worker"
    poll_every = NOTICE_POLL_SECONDS

    def __init__(self, services: Services, notifier: Notifier | None = None) -> None:
        super().__init__(services, log)
        self.notifier = notifier or Notifier(services)

    def queue(self) -> Queue:
        return topology_for(self.services.settings).status

    def poll_once(self, keep_going: Callable[[], bool]) -> None:
        """Send the notices that are due (the poll's turn)."""
        self.notifier.send_due(keep_going=keep_going)

    def on_message(self, message: Message, stop: threading.Event) -> None:
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        try:
            outcome = judge(self.services, body)
            if outcome.code == NOT_RECORDED_YET:
                # Captured, a runner makes it a complaint within seconds: try again then.
                message.requeue()
                self.back_off(stop)
                return
            if not outcome.done:
                self._quarantine(body, outcome)
        except StoreUnavailable:
            message.requeue()
            self.back_off(stop)
            return
        except Exception:  # a bug: keep the message for a person, not in a loop
            log.exception("status message could not be handled; quarantined")
            try:
                self._quarantine(body, Judged(False, "internal_error", "unexpected error"))
            except Exception:
                message.requeue()
                self.back_off(stop)
                return
        message.ack()
        self.settled()

    def _quarantine(self, body: bytes, outcome: Judged) -> None:
        log.warning(
            "status message refused (%s: %s); quarantined", outcome.code, outcome.reason[:200]
        )
        self.services.store.complaints.quarantine(
            channel=QUARANTINE_CHANNEL,
            data=body,
            content_type=CONTENT_TYPE,
            reason_code=outcome.code,
            reason=outcome.reason,
            source_ids={"reference": outcome.reference},
        )


def run_worker(services: Services, stop: threading.Event) -> None:
    """The ``Component`` worker: ``intake case-worker`` and ``intake run`` start it."""
    CaseWorker(services).run(stop)
