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
back on the queue. Attempts are counted on the row, unexpected errors
included: after ``max_attempts`` in a row the complaint leaves the queue,
so one complaint cannot hold it (a requeued delivery comes back near its
head), and is tried again by the workers' poll on a schedule (5 minutes,
doubling up to an hour, the last try ``DEADLINE_MARGIN`` before its
acknowledgement deadline); only when that last try fails is it recorded
and published as ``ack.failed``. A relay away for an afternoon thus delays
acknowledgements, it does not fail them. Once the cause is fixed,
``intake ack retry`` re-opens failed rows and brings deferred ones forward;
the same poll sends both (``resend_due``), one worker per row (a lease).

Global daily budgets (``BUDGETS``: SMS and WhatsApp together, e-mail): a
method whose budget is spent is passed over for the next one; when none is
left, the complaint waits for the next local day (an undecided row deferred
to midnight, reason ``daily_budget_exhausted``, decided again then), at the
latest for its last try before the deadline. The claim that takes a
budget's last place logs an ERROR, once a day across all workers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from config.retry import backoff_delay
from gateway.acks.policy import (
    BUDGET_OF,
    BUDGETS,
    DAILY_BUDGET_EXHAUSTED,
    EMAIL,
    LETTER,
    METHODS_BY_CHANNEL,
    SMS,
    WHATSAPP,
    AckContext,
    Plan,
    Skip,
    decide,
)
from gateway.acks.senders import Outgoing, Sender, SendFailed, Sent
from gateway.acks.senders.letter import LetterSender
from gateway.acks.senders.mail import SMTP_TIMEOUT, EmailSender, new_message_id
from gateway.acks.texts import languages_for, unreviewed
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.acks import (
    FAILED,
    FAILED_KIND,
    QUEUED,
    SENDING,
    SENT,
    SENT_KIND,
    UNDELIVERED,
    AckRecord,
    Budget,
    event_key,
)
from normalizer.contract import ComplaintMessage, utc_iso
from normalizer.draft import RawInput
from normalizer.errors import OurFailure

log = logging.getLogger("intake.acks")

# A complaint that left the queue is tried again after these (doubling between them).
DEFER_FIRST, DEFER_CEILING = timedelta(minutes=5), timedelta(hours=1)
# Its last try comes this long before the acknowledgement deadline, whatever
# the schedule says; a failure then is recorded within the deadline. Longer
# than a retry's lease (a worker that died mid-try is replaced in time).
DEADLINE_MARGIN = timedelta(minutes=30)
# Reason of a failure nobody foresaw (a bug, data the code did not expect).
INTERNAL_ERROR = "internal_error"
# Network waits of the slowest send: an SMTP session (connect, greeting, EHLO,
# STARTTLS, EHLO, AUTH trying its methods, MAIL, RCPT, DATA, the message, QUIT),
# each allowed ``SMTP_TIMEOUT``; a Twilio send is one request (sms.TWILIO_TIMEOUT).
SLOWEST_SEND_WAITS = 20
# How long a worker keeps a row of the poll: longer than the slowest send, so
# no other worker takes it mid-send; a worker that died leaves it this long.
RETRY_LEASE = timedelta(seconds=SLOWEST_SEND_WAITS * SMTP_TIMEOUT)
# A row of the poll not sent on a try (its lease let go) waits this long for the next.
RETRY_PAUSE = timedelta(minutes=1)
# Each lost race for a recipient's last place fills that recipient's day, so
# deciding again ends within one round per method.
CLAIM_ROUNDS = 1 + max(len(methods) for methods in METHODS_BY_CHANNEL.values())


class RetryLater(OurFailure):
    """Not sent, not our customer's fault: put the complaint back and try again later."""


def build_senders(services: Services, context: AckContext) -> dict[str, Sender]:
    """A sender per configured method (a wrong relay URL fails here, at start-up)."""
    settings = services.settings
    factories = {
        EMAIL: lambda: EmailSender(settings, services.store.blobs),
        SMS: lambda: _twilio(services),
        WHATSAPP: lambda: _twilio(services),
        LETTER: lambda: LetterSender(settings, services.store.blobs),
    }
    return {method: factories[method]() for method in context.enabled_methods}


def _twilio(services: Services) -> Sender:
    from gateway.acks.senders.sms import TwilioSender

    return TwilioSender(services.settings)


class Acknowledger:
    def __init__(
        self,
        services: Services,
        senders: dict[str, Sender] | None = None,
        *,
        max_attempts: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        settings = services.settings
        self.services = services
        self.acks = services.store.acks
        self.context = AckContext.from_settings(settings)
        self.senders = senders if senders is not None else build_senders(services, self.context)
        self.max_attempts = max_attempts or settings.ack_max_attempts
        # When "now" is, for the deadline of a complaint that keeps failing.
        self.clock = clock
        # Configuration failures already logged as errors, per method: once, not per complaint.
        self.alarms: set[str] = set()

    def settle(self, message: ComplaintMessage, *, reopened: bool = False) -> bool:
        """Acknowledge one complaint; True when nothing is left to do for it now.

        True: sent, queued, refused, skipped, left to the workers' poll
        after ``max_attempts`` (deferred), or failed at its deadline.
        False: try again later (the delivery goes back on the queue; a row
        of the poll is tried again after ``RETRY_PAUSE``).
        """
        try:
            self.handle(message, reopened=reopened)
        except (RetryLater, StoreUnavailable):
            return False
        except Exception as exc:
            log.exception("acknowledgement of %s failed unexpectedly", message.reference)
            return self._count_unexpected(message, exc)
        return True

    def handle(self, message: ComplaintMessage, *, reopened: bool = False) -> AckRecord:
        with complaint_context(message.id):
            record = self.acks.get(message.id)
            if record is None or record.undecided:
                record = self._decide(message)
                if record.undecided:  # waiting for a budget's next day, decided again then
                    return record
            if record.status == UNDELIVERED and reopened:
                # Reported undelivered (Twilio, a bounce): the next method, from the poll.
                return self.redeliver(message, record)
            if record.status != SENDING or (record.retry_at is not None) != reopened:
                # Done (or refused) on an earlier delivery; or deferred or re-opened,
                # which only a worker's poll sends (a stray delivery must not send it too).
                return record
            if self.acks.event_recorded(event_key(message.id, sent_key(record))):
                self.acks.finish(message.id, SENT)  # sent before a crash: this round is done
                return self._reloaded(message.id)
            return self._send(message, record)

    def resend_due(self, limit: int = 10, keep_going: Callable[[], bool] = lambda: True) -> int:
        """Send the deferred and re-opened rows that are due; how many were tried.

        ``keep_going`` is asked before each row, so a worker told to stop
        starts no new send.
        """
        tried = 0
        for record in self.acks.due_retries(limit):
            if not keep_going():
                break
            if not self.acks.take_retry(record.complaint_id, RETRY_LEASE):
                continue  # another worker's
            message = self.services.store.complaints.get_by_reference(record.reference)
            if message is None:
                # Its row is kept (the lease brings it back); a person must look.
                log.error("acknowledgement of %s: its complaint cannot be read", record.reference)
                continue
            if not self.settle(message, reopened=True):
                # Not sent, still ours: the next try need not wait for the lease.
                self.acks.defer(message.id, self.clock() + RETRY_PAUSE, None)
            tried += 1
        return tried

    def _decide(self, message: ComplaintMessage) -> AckRecord:
        """Choose how to acknowledge and take the recipient's (and budget's) place for today."""
        for _ in range(CLAIM_ROUNDS):
            decision = decide(message, self.context, self.acks.sent_today, self._budget_left)
            if isinstance(decision, Skip) and decision.reason == DAILY_BUDGET_EXHAUSTED:
                return self._wait_for_budget(message, decision)
            if isinstance(decision, Skip):
                log.info("no acknowledgement for %s: %s", message.reference, decision.reason)
                return self.acks.skip(message, decision.reason, decision.detail)
            record = self._claim(message, decision)
            if record is not None:
                return record
            # Another worker took the recipient's (or budget's) last place since the count.
        return self.acks.skip(message, "recipient_daily_limit", "every place taken meanwhile")

    def budget(self, method: str) -> Budget | None:
        """The global daily budget ``method`` counts against, if one is set."""
        name = BUDGET_OF.get(method)
        if name is None or name not in self.context.budgets:
            return None
        return Budget(name, BUDGETS[name], self.context.budgets[name])

    def _budget_left(self, name: str) -> bool:
        return self.acks.budget_used_today(BUDGETS[name]) < self.context.budgets[name]

    def _wait_for_budget(self, message: ComplaintMessage, decision: Skip) -> AckRecord:
        """No budget left today: decided again at the next local midnight (or the last try)."""
        now = self.clock()
        retry_at = min(self.acks.next_midnight(now), message.ack_due_at - DEADLINE_MARGIN)
        if retry_at <= now:
            return self._failed_for_budget(message, decision)
        log.warning(
            "acknowledgement of %s waits for the next day's budget (%s)",
            message.reference,
            decision.detail,
        )
        return self.acks.wait_for_budget(message, retry_at, decision.reason, decision.detail)

    def _failed_for_budget(self, message: ComplaintMessage, decision: Skip) -> AckRecord:
        """The last try before the deadline found no budget: failed, published, for staff."""
        record = self.acks.wait_for_budget(message, self.clock(), decision.reason, decision.detail)
        return self._failed(message, record, decision.reason, decision.detail)

    def _claim(self, message: ComplaintMessage, plan: Plan) -> AckRecord | None:
        values = {
            "method": plan.method,
            "recipient": plan.recipient,
            "languages": ",".join(plan.languages),
            "message_id": new_message_id(message.reference, self.services.settings.smtp_hostname),
        }
        budget = self.budget(plan.method)
        claim = self.acks.claim_within(message, values, self.context.max_per_day, budget)
        if claim.filled_budget and budget is not None:
            log.error(
                "the daily budget of %s acknowledgements (%d) is spent: the rest wait for "
                "tomorrow (if legitimate: raise INTAKE_ACK_%s_MAX_PER_DAY, `intake ack retry`)",
                budget.name,
                budget.per_day,
                budget.name.upper(),
            )
        return claim.record

    def _send(self, message: ComplaintMessage, record: AckRecord) -> AckRecord:
        plan = Plan(str(record.method), str(record.recipient), languages_for(message))
        outgoing = Outgoing(
            message=message, plan=plan, message_id=record.message_id or "", ack_id=record.id
        )
        try:
            sent = self.senders[plan.method].send(outgoing)
        except SendFailed as exc:
            if exc.fallback or exc.permanent:
                return self.fall_back(message, record, exc.reason, exc.detail)
            return self._not_sent(message, record, exc)
        self.alarms.discard(plan.method)
        if sent.status == QUEUED:
            self.acks.finish(message.id, QUEUED, document=sent.document)
            log.info("acknowledgement letter for %s queued for the mailroom", message.reference)
            return self._reloaded(message.id)
        return self.record_sent(message, plan, sent, datetime.now(UTC))

    def redeliver(self, message: ComplaintMessage, record: AckRecord) -> AckRecord:
        """A send the provider reported undelivered: the next method, or failed for staff.

        The row already counts the round (``rounds``), so the next send
        publishes an ``ack.sent`` of its own and is not taken for the first.
        """
        log.warning(
            "acknowledgement of %s by %s reported undelivered (%s)",
            message.reference,
            record.method,
            record.detail or "no detail",
        )
        return self.fall_back(message, record, UNDELIVERED, record.detail or "")

    def fall_back(
        self, message: ComplaintMessage, record: AckRecord, reason: str, detail: str
    ) -> AckRecord:
        """The method could not reach the customer: the next one of the channel's order.

        A refusal for good (the address or number refused, a WhatsApp template
        refused or missing, a message undelivered): same row, same Message-ID,
        the row's method and recipient change, and what went wrong is kept in
        its ``detail`` meanwhile. With no method left, the last refusal is
        recorded and published (``ack.failed``): staff acknowledge it by hand.
        """
        method = str(record.method)

        def sent_today(recipient: str) -> int:
            # This very row (still ``sending`` to the same phone for WhatsApp and
            # SMS) is not one more acknowledgement to that customer.
            return self.acks.sent_today(recipient, excluding=message.id)

        def budget_left(name: str) -> bool:
            used = self.acks.budget_used_today(BUDGETS[name], excluding=message.id)
            return used < self.context.budgets[name]

        decision = decide(message, self.context, sent_today, budget_left, after=method)
        if isinstance(decision, Skip) and decision.reason == DAILY_BUDGET_EXHAUSTED:
            # The next method's budget is spent for today: the row goes back to
            # undecided and waits for tomorrow (within the 10 days), as a first
            # send does, rather than giving up; what failed stays in ``detail``.
            self.acks.finish(
                message.id,
                SENDING,
                method=None,
                recipient=None,
                detail=f"{method}: {reason}: {detail}",
                attempts=0,
            )
            return self._wait_for_budget(message, decision)
        if isinstance(decision, Skip):
            return self._failed(message, record, reason, detail)
        log.warning(
            "acknowledgement of %s: %s did not reach the customer (%s); trying %s",
            message.reference,
            method,
            reason,
            decision.method,
        )
        self.acks.finish(
            message.id,
            SENDING,
            method=decision.method,
            recipient=decision.recipient,
            detail=f"{method}: {reason}: {detail}",
            attempts=0,
        )
        return self._send(message, self._reloaded(message.id))

    def _not_sent(self, message: ComplaintMessage, record: AckRecord, exc: SendFailed) -> AckRecord:
        """Count the attempt; after ``max_attempts``, off the queue; else ``RetryLater``."""
        if exc.configuration and str(record.method) not in self.alarms:
            self.alarms.add(str(record.method))
            log.error(
                "%s acknowledgements cannot be sent until the configuration is fixed: %s",
                record.method,
                exc,
            )
        attempts = self.acks.count_attempt(message, f"{exc.reason}: {exc.detail}")
        if attempts >= self.max_attempts:
            return self._defer_or_fail(message, attempts, exc.reason, exc.detail)
        log.warning("acknowledgement of %s not sent yet: %s", message.reference, exc)
        raise RetryLater(str(exc)) from exc

    def _defer_or_fail(
        self, message: ComplaintMessage, attempts: int, reason: str, detail: str
    ) -> AckRecord:
        """Off the queue: tried again later by the poll, or failed on its last try.

        The schedule never skips the last try, ``DEADLINE_MARGIN`` before the
        deadline: a failure is recorded only once no try is left.
        """
        now = self.clock()
        last_try = message.ack_due_at - DEADLINE_MARGIN
        if now >= last_try:
            summary = f"{detail} (after {attempts} attempts, until the acknowledgement deadline)"
            return self._failed(message, self._reloaded(message.id), reason, summary)
        rounds = attempts - self.max_attempts + 1
        delay = backoff_delay(
            rounds, DEFER_FIRST.total_seconds(), DEFER_CEILING.total_seconds(), jitter=0.2
        )
        retry_at = min(now + timedelta(seconds=delay), last_try)
        self.acks.defer(message.id, retry_at, reason)
        log.warning(
            "acknowledgement of %s not sent after %d attempts (%s); next try at %s",
            message.reference,
            attempts,
            reason,
            f"{retry_at:%Y-%m-%d %H:%M}Z",
        )
        return self._reloaded(message.id)

    def _count_unexpected(self, message: ComplaintMessage, exc: Exception) -> bool:
        """Count an unexpected error as an attempt; True once the complaint leaves the queue."""
        try:
            record = self.acks.get(message.id)
            if record is not None and record.status != SENDING:
                return True  # the error came after the work was recorded
            attempts = self.acks.count_attempt(message, f"{type(exc).__name__}: {exc}")
            if attempts < self.max_attempts:
                return False
            self._defer_or_fail(message, attempts, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        except StoreUnavailable:
            return False
        return True

    def record_sent(
        self, message: ComplaintMessage, plan: Plan, sent: Sent, sent_at: datetime
    ) -> AckRecord:
        """Publish ``ack.sent`` (the proof) and close the row; also used when a letter is posted."""
        record = self._reloaded(message.id)
        details = self._details(message, plan, sent_at) | {
            "provider_id": sent.provider_id,
            "round": record.rounds,
        }
        event_id = self._publish(
            message, SENT_KIND, sent.evidence, sent.content_type, details, key=sent_key(record)
        )
        self.acks.handed_over(
            message.id,
            sent_at=sent_at,
            provider_id=sent.provider_id,
            event_id=event_id,
            delivery=sent.delivery,
        )
        log.info("acknowledgement of %s sent by %s", message.reference, plan.method)
        return self._reloaded(message.id)

    def _failed(
        self, message: ComplaintMessage, record: AckRecord, reason: str, detail: str
    ) -> AckRecord:
        failed_at = datetime.now(UTC)
        plan = Plan(record.method or "", record.recipient or "", languages_for(message))
        details = self._details(message, plan, failed_at) | {"reason": reason, "detail": detail}
        evidence = json.dumps(details, ensure_ascii=False).encode()
        # Each round re-opened by ``intake ack retry`` publishes its own failure.
        key = FAILED_KIND if not record.reopened else f"{FAILED_KIND}.{record.reopened}"
        event_id = self._publish(
            message, FAILED_KIND, evidence, "application/json", details, key=key
        )
        self.acks.finish(message.id, FAILED, reason=reason, detail=detail, event_id=event_id)
        log.warning("acknowledgement of %s failed: %s", message.reference, reason)
        return self._reloaded(message.id)

    def _details(self, message: ComplaintMessage, plan: Plan, moment: datetime) -> dict[str, Any]:
        return {
            "complaint_id": message.id,
            "reference": message.reference,
            "method": plan.method or None,
            "recipient": plan.recipient or None,
            "languages": list(plan.languages),
            # Texts no native speaker has checked yet (Tamazight): staff can follow them up.
            "unreviewed_languages": unreviewed(plan.languages),
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
        *,
        key: str | None = None,
    ) -> str:
        raw = RawInput(
            channel=message.channel,
            data=evidence,
            content_type=content_type,
            received_at=datetime.fromisoformat(details["at"].replace("Z", "+00:00")),
            dedup_key=event_key(message.id, key or kind),
        )
        event, _created = self.services.store.complaints.record_event(raw, kind, details)
        return event.id

    def _reloaded(self, complaint_id: str) -> AckRecord:
        record = self.acks.get(complaint_id)
        assert record is not None  # written just before, by this worker
        return record


def sent_key(record: AckRecord) -> str:
    """The ``ack.sent`` of this round: a send after an undelivered one is an event of its own."""
    return SENT_KIND if not record.rounds else f"{SENT_KIND}.{record.rounds}"
