"""Acknowledge one complaint: decide, claim, send, record, publish.

worker (complaints.acks) -> **Acknowledger.handle(complaint)** -> policy
(``decide``) -> a row in ``acknowledgements`` (unique per complaint) -> a
sender -> ``event.ack.sent`` or ``event.ack.failed`` on the events queue,
with the time and what went out kept as evidence. That event is the proof,
complaint by complaint, of the 10-day obligation.

Idempotent on the complaint id. A redelivered complaint finds its row: done
(nothing sent again), or still ``sending`` after a crash, in which case the
published event says whether the message went out; if it did not, it is
sent again with the same Message-ID. The one window left (a crash between
the relay's 250 and the event) can send the same e-mail twice; mail clients
show it once, by Message-ID.

A failure that retrying cannot fix (the address refused) is recorded and
published; any other raises ``RetryLater`` and the worker puts the complaint
back on the queue.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from channels.acks.letter import LetterSender
from channels.acks.mail import EmailSender, new_message_id
from channels.acks.policy import EMAIL, LETTER, SMS, WHATSAPP, AckContext, Plan, Skip, decide
from channels.acks.sending import Outgoing, Sender, SendFailed, Sent
from channels.acks.store import FAILED, QUEUED, SENDING, SENT, SKIPPED, AckRecord, AckStore
from channels.acks.texts import languages_for
from gateway.logs import complaint_context
from gateway.services import Services
from normalizer.contract import ComplaintMessage, utc_iso
from normalizer.draft import RawInput

log = logging.getLogger("intake.acks")

SENT_KIND, FAILED_KIND = "ack.sent", "ack.failed"


class RetryLater(Exception):
    """Not sent, not our customer's fault: put the complaint back and try again later."""


def build_senders(services: Services, context: AckContext) -> dict[str, Sender]:
    """A sender per configured method (a wrong relay URL fails here, at start-up)."""
    settings = services.settings
    factories = {
        EMAIL: lambda: EmailSender(settings),
        SMS: lambda: _twilio(services),
        WHATSAPP: lambda: _twilio(services),
        LETTER: lambda: LetterSender(settings, services.store.blobs),
    }
    return {method: factories[method]() for method in context.enabled_methods}


def _twilio(services: Services) -> Sender:
    from channels.acks.sms import TwilioSender

    return TwilioSender(services.settings)


class Acknowledger:
    def __init__(self, services: Services, senders: dict[str, Sender] | None = None) -> None:
        settings = services.settings
        self.services = services
        self.acks = AckStore(services.store.engine, settings.timezone)
        self.context = AckContext.from_settings(settings)
        self.senders = senders if senders is not None else build_senders(services, self.context)

    def handle(self, message: ComplaintMessage) -> AckRecord:
        with complaint_context(message.id):
            record = self.acks.get(message.id)
            if record is None:
                decision = decide(message, self.context, self.acks.sent_today)
                if isinstance(decision, Skip):
                    log.info("no acknowledgement for %s: %s", message.reference, decision.reason)
                    return self.acks.open(
                        message, SKIPPED, reason=decision.reason, detail=decision.detail
                    )
                record = self._claim(message, decision)
            if record.status != SENDING:
                return record  # acknowledged (or refused) on an earlier delivery
            if self._event_exists(message.id, SENT_KIND):
                self.acks.finish(message.id, SENT)
                return self._reloaded(message.id)
            return self._send(message, record)

    def _claim(self, message: ComplaintMessage, plan: Plan) -> AckRecord:
        message_id = new_message_id(message.reference, self.services.settings.smtp_hostname)
        return self.acks.open(
            message,
            SENDING,
            method=plan.method,
            recipient=plan.recipient,
            languages=plan.languages,
            message_id=message_id,
        )

    def _send(self, message: ComplaintMessage, record: AckRecord) -> AckRecord:
        plan = Plan(str(record.method), str(record.recipient), languages_for(message))
        outgoing = Outgoing(message=message, plan=plan, message_id=record.message_id or "")
        try:
            sent = self.senders[plan.method].send(outgoing)
        except SendFailed as exc:
            if not exc.permanent:
                self.acks.count_attempt(message.id, f"{exc.reason}: {exc.detail}")
                log.warning("acknowledgement of %s not sent yet: %s", message.reference, exc)
                raise RetryLater(str(exc)) from exc
            return self._failed(message, plan, exc)
        if sent.status == QUEUED:
            self.acks.finish(message.id, QUEUED, document=sent.document)
            log.info("acknowledgement letter for %s queued for the mailroom", message.reference)
            return self._reloaded(message.id)
        return self.record_sent(message, plan, sent, datetime.now(UTC))

    def record_sent(
        self, message: ComplaintMessage, plan: Plan, sent: Sent, sent_at: datetime
    ) -> AckRecord:
        """Publish ``ack.sent`` (the proof) and close the row; also used when a letter is posted."""
        details = self._details(message, plan, sent_at) | {"provider_id": sent.provider_id}
        event_id = self._publish(message, SENT_KIND, sent.evidence, sent.content_type, details)
        self.acks.finish(
            message.id, SENT, sent_at=sent_at, provider_id=sent.provider_id, event_id=event_id
        )
        log.info("acknowledgement of %s sent by %s", message.reference, plan.method)
        return self._reloaded(message.id)

    def _failed(self, message: ComplaintMessage, plan: Plan, exc: SendFailed) -> AckRecord:
        failed_at = datetime.now(UTC)
        details = self._details(message, plan, failed_at) | {
            "reason": exc.reason,
            "detail": exc.detail,
        }
        evidence = json.dumps(details, ensure_ascii=False).encode()
        event_id = self._publish(message, FAILED_KIND, evidence, "application/json", details)
        self.acks.finish(
            message.id, FAILED, reason=exc.reason, detail=exc.detail, event_id=event_id
        )
        log.warning("acknowledgement of %s failed: %s", message.reference, exc.reason)
        return self._reloaded(message.id)

    def _details(self, message: ComplaintMessage, plan: Plan, moment: datetime) -> dict[str, Any]:
        return {
            "complaint_id": message.id,
            "reference": message.reference,
            "method": plan.method,
            "recipient": plan.recipient,
            "languages": list(plan.languages),
            "at": utc_iso(moment),
            "ack_due_at": message.ack_due_at.isoformat(),
            "within_deadline": moment <= message.ack_due_at,
        }

    def _publish(
        self,
        message: ComplaintMessage,
        kind: str,
        evidence: bytes,
        content_type: str,
        details: dict[str, Any],
    ) -> str:
        raw = RawInput(
            channel=message.channel,
            data=evidence,
            content_type=content_type,
            received_at=datetime.fromisoformat(details["at"].replace("Z", "+00:00")),
            dedup_key=_event_key(message.id, kind),
        )
        event, _created = self.services.store.complaints.record_event(raw, kind, details)
        return event.id

    def _event_exists(self, complaint_id: str, kind: str) -> bool:
        return self.acks.event_recorded(_event_key(complaint_id, kind))

    def _reloaded(self, complaint_id: str) -> AckRecord:
        record = self.acks.get(complaint_id)
        assert record is not None  # written just before, by this worker
        return record


def _event_key(complaint_id: str, kind: str) -> str:
    return f"ack:{complaint_id}:{kind}"
