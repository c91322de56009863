"""Bounded attempts: one complaint that keeps failing cannot hold the acknowledgement queue.

``judge`` says what to do with each delivery (``Verdict``): a body that is
not a complaint goes to the dead-letter queue, a failure of ours is put
back, and after the allowed attempts, unexpected errors included, the
delivery is acknowledged and the complaint left to the workers' poll, tried
again later on a schedule whose last try comes ``DEADLINE_MARGIN`` before
the acknowledgement deadline; only when that try fails is it recorded as
failed and ``ack.failed`` published. The last tests run the worker on the
machine's RabbitMQ (quorum queue: a requeued delivery comes back near its
head): with a relay that keeps answering 451 for one customer the next
complaint is still acknowledged, and a send of the poll stuck on the relay
does not hold the consumer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from config.settings import Settings
from gateway.acks.acknowledger import (
    DEADLINE_MARGIN,
    INTERNAL_ERROR,
    RETRY_LEASE,
    RETRY_PAUSE,
    Acknowledger,
)
from gateway.acks.policy import EMAIL
from gateway.acks.senders import Outgoing, SendFailed, Sent
from gateway.acks.worker import AckWorker, Verdict, judge
from gateway.lib.services import Services, build_services
from gateway.store.acks import AckRecord
from gateway.store.db import writing
from gateway.store.tables import AcknowledgementRow
from normalizer.contract import ComplaintEvent, ComplaintMessage
from tests.peers.acks import (
    ack_events,
    ack_row,
    event_kinds,
    mail_complaint,
    publish,
    running_worker,
    wait_for_row,
)
from tests.peers.processes import wait_until
from tests.peers.smtp_capture import REFUSED_FOR_NOW, smtp_capture

TEXT = "Bonjour, mon transfert de 2000 dirhams vers Fès n'est jamais arrivé."
ATTEMPTS = 3


class Failing:
    """A sender that fails every time, the way ``error`` says."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def send(self, outgoing: Outgoing) -> Sent:
        self.calls += 1
        raise self.error


@contextmanager
def with_email(settings: Settings) -> Iterator[Services]:
    """Services on ``settings`` with e-mail configured (the tests' senders replace the relay)."""
    built = build_services(
        settings.model_copy(update={"smtp_relay_url": SecretStr("smtp://127.0.0.1:9")})
    )
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with with_email(settings) as built:
        yield built


def body_of(complaint: ComplaintMessage) -> bytes:
    return ComplaintEvent.wrap(complaint, "test").model_dump_json().encode()


def verdicts(acknowledger: Acknowledger, complaint: ComplaintMessage) -> list[Verdict]:
    return [judge(acknowledger, body_of(complaint)) for _ in range(ATTEMPTS)]


class Sending:
    """A sender that works."""

    def send(self, outgoing: Outgoing) -> Sent:
        return Sent(evidence=b"sent", content_type="text/plain", provider_id="test")


def ack_row_due_now(services: Services, complaint_id: str) -> None:
    """Bring a set-aside row's next try to now (the schedule's minutes, skipped)."""
    with writing(services.store.engine) as session:
        session.execute(
            update(AcknowledgementRow)
            .where(AcknowledgementRow.complaint_id == complaint_id)
            .values(retry_at=datetime.now(UTC))
        )


def deferred(services: Services, complaint_id: str) -> AckRecord | None:
    row = ack_row(services, complaint_id)
    return row if row is not None and row.retry_at is not None else None


def failed_events(services: Services) -> list[str]:
    return [kind for kind in event_kinds(services) if kind == "ack.failed"]


def test_a_body_that_is_not_a_complaint_event_is_sent_to_the_dead_letters(
    services: Services,
) -> None:
    acknowledger = Acknowledger(services, senders={})

    assert judge(acknowledger, b'{"type": "something else"}') is Verdict.POISON


def test_a_later_minor_of_the_contract_is_acknowledged_not_dead_lettered(
    services: Services,
) -> None:
    """A worker still on this version, fed by a gateway already on a later 1.x."""
    complaint = mail_complaint(services, "Mon transfert n'est jamais arrivé.")
    document = json.loads(body_of(complaint))
    document["data"]["schema_version"] = "1.9"
    document["data"]["a_later_field"] = {"any": "thing"}
    document["data"]["customer"]["a_later_property"] = "k" * 64
    sender = Sending()
    acknowledger = Acknowledger(services, senders={EMAIL: sender})

    assert judge(acknowledger, json.dumps(document).encode()) is Verdict.DONE
    row = ack_row(services, complaint.id)
    assert row is not None and row.status == "sent"


def test_a_failure_of_ours_leaves_the_queue_and_is_tried_again_later(
    services: Services,
) -> None:
    sender = Failing(SendFailed("relay_unavailable", "ConnectionRefusedError", permanent=False))
    acknowledger = Acknowledger(services, senders={EMAIL: sender}, max_attempts=ATTEMPTS)
    complaint = mail_complaint(services, TEXT)

    found = verdicts(acknowledger, complaint)
    row = ack_row(services, complaint.id)

    assert found == [Verdict.RETRY, Verdict.RETRY, Verdict.DONE]
    # Not failed: a relay away for an afternoon delays the acknowledgement only.
    assert row is not None and (row.status, row.attempts) == ("sending", ATTEMPTS)
    assert row.retry_at is not None and row.retry_at > datetime.now(UTC)
    assert row.retry_at < complaint.ack_due_at
    assert failed_events(services) == []
    assert judge(acknowledger, body_of(complaint)) is Verdict.DONE  # a redelivery: nothing more
    assert sender.calls == ATTEMPTS
    # The poll takes it when it is due, and the relay is back.
    later = Acknowledger(services, senders={EMAIL: Sending()}, max_attempts=ATTEMPTS)
    ack_row_due_now(services, complaint.id)
    assert later.resend_due() == 1
    assert ack_row(services, complaint.id).status == "sent"  # type: ignore[union-attr]


def test_a_failure_of_ours_is_recorded_and_published_at_the_deadline(
    services: Services,
) -> None:
    sender = Failing(SendFailed("relay_unavailable", "ConnectionRefusedError", permanent=False))
    complaint = mail_complaint(services, TEXT)
    near_deadline = complaint.ack_due_at - timedelta(minutes=1)
    acknowledger = Acknowledger(
        services, senders={EMAIL: sender}, max_attempts=ATTEMPTS, clock=lambda: near_deadline
    )

    found = verdicts(acknowledger, complaint)
    row = ack_row(services, complaint.id)

    assert found == [Verdict.RETRY, Verdict.RETRY, Verdict.DONE]
    assert row is not None and (row.status, row.reason) == ("failed", "relay_unavailable")
    assert failed_events(services) == ["ack.failed"]


def test_the_last_try_is_kept_just_before_the_deadline_however_long_the_step(
    services: Services,
) -> None:
    sender = Failing(SendFailed("relay_unavailable", "ConnectionRefusedError", permanent=False))
    complaint = mail_complaint(services, TEXT)
    # The schedule's next step (5 minutes or more) would pass the last try's time.
    now = complaint.ack_due_at - DEADLINE_MARGIN - timedelta(minutes=2)
    acknowledger = Acknowledger(
        services, senders={EMAIL: sender}, max_attempts=ATTEMPTS, clock=lambda: now
    )

    verdicts(acknowledger, complaint)
    row = ack_row(services, complaint.id)

    assert row is not None and (row.status, row.reason) == ("sending", "relay_unavailable")
    assert row.retry_at == complaint.ack_due_at - DEADLINE_MARGIN
    assert failed_events(services) == []


def test_a_try_of_the_poll_not_sent_comes_again_after_a_pause_not_the_lease(
    services: Services,
) -> None:
    complaint = mail_complaint(services, TEXT)
    verdicts(
        Acknowledger(services, senders={EMAIL: Failing(RuntimeError("x"))}, max_attempts=ATTEMPTS),
        complaint,
    )
    assert ack_row(services, complaint.id).attempts == ATTEMPTS  # type: ignore[union-attr]
    Acknowledger(services, senders={}).acks.reopen(complaint.id, cap=3)  # attempts start over
    sender = Failing(SendFailed("relay_unavailable", "ConnectionRefusedError", permanent=False))
    poll = Acknowledger(services, senders={EMAIL: sender}, max_attempts=ATTEMPTS)

    assert poll.resend_due() == 1
    row = ack_row(services, complaint.id)

    assert sender.calls == 1
    assert row is not None and row.retry_at is not None and row.status == "sending"
    assert row.retry_at <= datetime.now(UTC) + RETRY_PAUSE < datetime.now(UTC) + RETRY_LEASE


def test_an_unexpected_error_counts_as_an_attempt_too(services: Services) -> None:
    sender = Failing(RuntimeError("a template the code did not expect"))
    acknowledger = Acknowledger(services, senders={EMAIL: sender}, max_attempts=ATTEMPTS)
    complaint = mail_complaint(services, TEXT)

    found = verdicts(acknowledger, complaint)
    row = ack_row(services, complaint.id)

    assert found == [Verdict.RETRY, Verdict.RETRY, Verdict.DONE]
    assert row is not None and (row.status, row.attempts) == ("sending", ATTEMPTS)
    assert row.retry_at is not None and row.retry_at > datetime.now(UTC)
    assert failed_events(services) == []


def test_an_error_before_a_method_is_chosen_is_counted_on_an_undecided_row(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_policy(*_args: object) -> None:
        raise KeyError("a channel the policy does not know")

    monkeypatch.setattr("gateway.acks.acknowledger.decide", broken_policy)
    acknowledger = Acknowledger(services, senders={}, max_attempts=ATTEMPTS)
    complaint = mail_complaint(services, TEXT)

    found = verdicts(acknowledger, complaint)
    row = ack_row(services, complaint.id)

    assert found == [Verdict.RETRY, Verdict.RETRY, Verdict.DONE]
    assert row is not None
    assert (row.status, row.method, row.attempts) == ("sending", None, ATTEMPTS)
    assert row.retry_at is not None
    # At the deadline, the same error is recorded as ours.
    near_deadline = complaint.ack_due_at - timedelta(minutes=1)
    Acknowledger(services, senders={}, max_attempts=ATTEMPTS, clock=lambda: near_deadline).settle(
        complaint, reopened=True
    )
    row = ack_row(services, complaint.id)
    assert row is not None and (row.status, row.reason) == ("failed", INTERNAL_ERROR)


def test_one_complaint_that_keeps_failing_does_not_hold_the_queue(
    amqp_settings: Settings,
) -> None:
    with smtp_capture() as relay:
        relay.handler.refuse["busy@example.ma"] = REFUSED_FOR_NOW
        services = build_services(
            amqp_settings.model_copy(update={"smtp_relay_url": SecretStr(relay.url)})
        )
        try:
            stuck = mail_complaint(services, TEXT, sender="busy@example.ma")
            behind = mail_complaint(services, f"{TEXT} Merci.", sender="karim@example.ma")
            publish(services)
            with running_worker(services):
                sent = wait_for_row(services, behind.id, "sent")
                set_aside = wait_until(
                    lambda: deferred(services, stuck.id), "the stuck complaint to leave the queue"
                )
            events = ack_events(services, 1)
        finally:
            services.close()

    assert sent.status == "sent"
    assert set_aside.attempts == services.settings.ack_max_attempts
    assert [e["data"]["details"]["reference"] for e in events] == [behind.reference]
    assert events[0]["type"] == "ma.cashplus.intake.ack.sent.v1"
    assert [mail.rcpt_tos for mail in relay.messages()] == [["karim@example.ma"]]


class Stuck:
    """A send that hangs, as on a relay that stopped answering, until ``release``."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, outgoing: Outgoing) -> Sent:
        self.entered.set()
        assert self.release.wait(60), "the test never let the send go"
        return Sent(evidence=b"sent", content_type="text/plain", provider_id="late")


@pytest.fixture
def broker_services(amqp_settings: Settings) -> Iterator[Services]:
    """On the machine's RabbitMQ."""
    with with_email(amqp_settings) as built:
        yield built


def test_a_send_of_the_poll_stuck_on_the_relay_does_not_hold_the_consumer(
    broker_services: Services,
) -> None:
    services = broker_services
    late = mail_complaint(services, TEXT, sender="late@example.ma")
    failing = Failing(RuntimeError("x"))
    verdicts(Acknowledger(services, senders={EMAIL: failing}, max_attempts=ATTEMPTS), late)
    ack_row_due_now(services, late.id)  # deferred, and due
    fresh = mail_complaint(services, f"{TEXT} Merci.", sender="karim@example.ma")
    publish(services)
    stuck = Stuck()
    worker = AckWorker(
        services,
        acknowledger=Acknowledger(services, senders={EMAIL: Sending()}),
        poller=Acknowledger(services, senders={EMAIL: stuck}),
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert stuck.entered.wait(30), "the poll never tried the deferred complaint"
        # The deferred complaint's send still hangs; the queue goes on.
        sent = wait_for_row(services, fresh.id, "sent")
        wait_until(lambda: worker.handled == 2, "both deliveries acknowledged to the broker")
    finally:
        stuck.release.set()
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"
    assert sent.status == "sent"
    assert ack_row(services, late.id).status == "sent"  # type: ignore[union-attr]
