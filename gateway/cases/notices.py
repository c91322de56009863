"""The notice of a longer delay: sent like an acknowledgement, in the customer's language.

``extended`` report -> a ``pending`` row in ``notices`` -> the case worker's
poll -> **Notifier.send_due** -> the acknowledgement policy (``decide``:
the same skip rules and order of methods; notices do not count against the
acknowledgements' daily caps) -> the acknowledgement senders with the
``extension`` texts (``gateway/acks/templates/<lang>/extension/``) ->
``event.notice.sent`` / ``event.notice.failed`` / ``event.notice.skipped``
on the events queue, with what went out as evidence.

A method that cannot reach the customer (a WhatsApp notice outside the
24-hour window: Twilio's 63016) falls back to the next method of the
channel's order, as acknowledgements do (SMS, then e-mail). A failure on
our side (relay or Twilio away) is tried again, 5 minutes
doubling up to an hour, ``MAX_ATTEMPTS`` times (about a day) before it is
recorded as failed. A notice skipped (a complaint forwarded by Bank
Al-Maghrib, a sender not authenticated, no contact) is left to staff, like
its acknowledgement.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from config.retry import backoff_delay
from gateway.acks.acknowledger import RETRY_LEASE, build_senders
from gateway.acks.policy import AckContext, Plan, Skip, decide
from gateway.acks.senders import Outgoing, Sender, SendFailed, Sent
from gateway.acks.senders.mail import new_message_id
from gateway.acks.texts import TEMPLATE_LANGUAGES, languages_for, written_date
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store.cases import (
    NOTICE_FAILED,
    NOTICE_QUEUED,
    NOTICE_SENT,
    NOTICE_SKIPPED,
    Notice,
)
from normalizer.contract import ComplaintMessage, utc_iso
from normalizer.draft import RawInput

log = logging.getLogger("intake.cases")

MAX_ATTEMPTS = 30
RETRY_FIRST, RETRY_CEILING = timedelta(minutes=5), timedelta(hours=1)


def notice_values(
    notice: Notice, zone: str, languages: tuple[str, ...] = TEMPLATE_LANGUAGES
) -> dict[str, dict[str, object]]:
    """What the extension texts name besides the acknowledgement's values, per language."""
    due = notice.answer_due_at
    if due is None:
        raise ValueError(f"notice {notice.id} has no new answer deadline")
    return {
        language: {
            "new_answer_due": written_date(due, language, zone),
            "new_answer_due_short": f"{due.astimezone(_zone(zone)):%d/%m/%Y}",
            "reason": notice.reason or "investigation",
        }
        for language in languages
    }


def _zone(zone: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(zone)


class Notifier:
    def __init__(
        self,
        services: Services,
        senders: dict[str, Sender] | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.services = services
        self.cases = services.store.cases
        self.context = AckContext.from_settings(services.settings)
        self.senders = senders if senders is not None else build_senders(services, self.context)
        self.clock = clock

    def send_due(self, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Send the notices that are due; how many were tried."""
        tried = 0
        for notice in self.cases.due_notices(now=self.clock()):
            if not keep_going():
                break
            if not self.cases.take_notice(notice.id, RETRY_LEASE):
                continue  # another worker's
            self.send(notice)
            tried += 1
        return tried

    def send(self, notice: Notice) -> None:
        message = self.services.store.complaints.get_by_reference(notice.reference)
        if message is None:
            log.error("notice %s: complaint %s cannot be read", notice.id, notice.reference)
            return
        with complaint_context(message.id):
            planned = self._plan(notice, message)
            if planned is None:
                return
            plan, message_id = planned
            outgoing = Outgoing(
                message=message,
                plan=plan,
                message_id=message_id,
                notice=notice.kind,
                values=notice_values(notice, self.services.settings.timezone),
            )
            try:
                sent = self.senders[plan.method].send(outgoing)
            except SendFailed as exc:
                self._not_sent(notice, message, plan, exc)
                return
            self._sent(notice, message, plan, sent)

    def _plan(self, notice: Notice, message: ComplaintMessage) -> tuple[Plan, str] | None:
        """How to reach the customer (chosen once, kept for every try), or None: skipped."""
        if notice.method is not None and notice.recipient is not None:
            plan = Plan(notice.method, notice.recipient, languages_for(message))
            return plan, notice.message_id or ""
        decision = decide(message, self.context, lambda _recipient: 0)
        if isinstance(decision, Skip):
            log.info("no notice for %s: %s (left to staff)", notice.reference, decision.reason)
            details = self._details(notice, message, None) | {
                "reason": decision.reason,
                "detail": decision.detail,
            }
            event_id = self._publish(notice, message, "notice.skipped", details)
            self.cases.finish_notice(
                notice.id,
                NOTICE_SKIPPED,
                reason=decision.reason,
                detail=decision.detail,
                event_id=event_id,
            )
            return None
        message_id = new_message_id(message.reference, self.services.settings.smtp_hostname)
        # The Message-ID drawn now is the one every later try carries.
        self.cases.plan_notice(notice.id, decision.method, decision.recipient, message_id)
        return decision, message_id

    def _sent(self, notice: Notice, message: ComplaintMessage, plan: Plan, sent: Sent) -> None:
        now = self.clock()
        if sent.status == NOTICE_QUEUED:
            self.cases.finish_notice(notice.id, NOTICE_QUEUED, document=sent.document)
            log.info("notice letter for %s queued for the mailroom", notice.reference)
            return
        details = self._details(notice, message, plan) | {"provider_id": sent.provider_id}
        event_id = self._publish(
            notice, message, "notice.sent", details, sent.evidence, sent.content_type
        )
        self.cases.finish_notice(notice.id, NOTICE_SENT, sent_at=now, event_id=event_id)
        log.info("notice of a longer delay for %s sent by %s", notice.reference, plan.method)

    def _not_sent(
        self, notice: Notice, message: ComplaintMessage, plan: Plan, exc: SendFailed
    ) -> None:
        now = self.clock()
        attempts = notice.attempts + 1
        if exc.fallback and self._fall_back(notice, message, plan, exc, now):
            return
        if exc.permanent or attempts >= MAX_ATTEMPTS:
            details = self._details(notice, message, plan) | {
                "reason": exc.reason,
                "detail": exc.detail,
            }
            event_id = self._publish(notice, message, "notice.failed", details)
            self.cases.finish_notice(
                notice.id, NOTICE_FAILED, reason=exc.reason, detail=exc.detail, event_id=event_id
            )
            log.warning("notice for %s failed: %s", notice.reference, exc.reason)
            return
        delay = backoff_delay(
            attempts, RETRY_FIRST.total_seconds(), RETRY_CEILING.total_seconds(), jitter=0.2
        )
        self.cases.notice_attempt_failed(
            notice.id, now + timedelta(seconds=delay), f"{exc.reason}: {exc.detail}"
        )
        log.warning("notice for %s not sent yet: %s", notice.reference, exc)

    def _fall_back(
        self,
        notice: Notice,
        message: ComplaintMessage,
        plan: Plan,
        exc: SendFailed,
        now: datetime,
    ) -> bool:
        """The method cannot reach the customer (a WhatsApp notice weeks after their last
        message is outside Twilio's 24-hour window): plan the next of the channel's
        order and try it at once. False when none is left."""
        following = decide(message, self.context, lambda _recipient: 0, after=plan.method)
        if isinstance(following, Skip):
            return False
        log.warning(
            "notice for %s: %s did not reach the customer (%s); trying %s",
            notice.reference,
            plan.method,
            exc.reason,
            following.method,
        )
        message_id = notice.message_id or new_message_id(
            message.reference, self.services.settings.smtp_hostname
        )
        self.cases.plan_notice(notice.id, following.method, following.recipient, message_id)
        self.cases.notice_attempt_failed(notice.id, now, f"{plan.method}: {exc.reason}")
        return True

    def _details(
        self, notice: Notice, message: ComplaintMessage, plan: Plan | None
    ) -> dict[str, Any]:
        return {
            "complaint_id": message.id,
            "reference": message.reference,
            "notice": notice.kind,
            "method": plan.method if plan else None,
            "recipient": plan.recipient if plan else None,
            "languages": list(plan.languages) if plan else [],
            "at": utc_iso(self.clock()),
            "answer_due_at": notice.answer_due_at.isoformat() if notice.answer_due_at else None,
            "reason": notice.reason,
        }

    def _publish(  # noqa: PLR0917
        self,
        notice: Notice,
        message: ComplaintMessage,
        kind: str,
        details: dict[str, Any],
        evidence: bytes | None = None,
        content_type: str = "application/json",
    ) -> str:
        raw = RawInput(
            channel=message.channel,
            data=evidence if evidence is not None else json.dumps(details).encode(),
            content_type=content_type,
            received_at=self.clock(),
            dedup_key=f"notice:{notice.id}:{kind}",
        )
        event, _created = self.services.store.complaints.record_event(raw, kind, details)
        return event.id
