"""A wrong Twilio setting, then ``intake ack retry``: nothing is lost for good.

The real twilio client talks to the local stand-in of Twilio's API with a
wrong auth token: Twilio answers 401 (code 20003), which is our
configuration, not the customer's number. The acknowledgement is retried,
logged as an error once, then deferred to the workers' poll (tried again
on a schedule) and recorded as failed only when its last try before the
deadline fails. Once the token is fixed, ``intake ack retry`` (a real
subprocess) brings a deferred acknowledgement forward, or re-opens a failed
one, and the worker sends it. A try in a worker's hands is never brought
forward (it would go out twice); refusals for good are re-opened only when
``--reason`` names them; complaints past their 10-day window, and
recipients who already had today's allowance, are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from gateway.acks.acknowledger import RETRY_LEASE, Acknowledger
from gateway.acks.cli import NOT_RETRYABLE
from gateway.lib.services import Services, build_services
from gateway.store.acks import FAILED, SENDING
from normalizer.contract import Channel, ComplaintMessage, Customer
from tests.peers.acks import ack_row, event_kinds, other_complaint, running_worker, wait_for_row
from tests.peers.processes import IntakeProcesses, env_for
from tests.peers.twilio_api import AUTH_TOKEN, TwilioApi, twilio_api, twilio_settings

PHONE = "+212661234567"
TEXT = "Bonjour, ma carte a été bloquée au guichet de Derb Omar ce matin."


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with twilio_api() as stand_in:
        yield stand_in


@pytest.fixture
def wrong_token(settings: Settings, api: TwilioApi) -> Iterator[Services]:
    built = build_services(twilio_settings(settings, api, "a-token-that-was-revoked"))
    try:
        yield built
    finally:
        built.close()


def deferred(services: Services, complaint: ComplaintMessage) -> None:
    """Failed on our side until it left the queue: the poll tries it again in minutes."""
    acknowledger = Acknowledger(services, max_attempts=2)
    assert acknowledger.settle(complaint) is False  # first attempt: back on the queue
    assert acknowledger.settle(complaint) is True  # off the queue, deferred
    row = ack_row(services, complaint.id)
    assert row is not None and row.status == SENDING
    assert row.retry_at is not None and row.retry_at > datetime.now(UTC)


def failed_for_good(services: Services, complaint: ComplaintMessage) -> None:
    # Tried until its acknowledgement deadline: the clock says that is a minute away.
    acknowledger = Acknowledger(
        services, max_attempts=2, clock=lambda: complaint.ack_due_at - timedelta(minutes=1)
    )
    assert acknowledger.settle(complaint) is False  # first attempt: back on the queue
    assert acknowledger.settle(complaint) is True  # the last one: recorded as failed


def retry(processes: IntakeProcesses, settings: Settings, *args: str) -> tuple[int, list[str]]:
    done = processes.run("ack", "retry", *args, env=env_for(settings))
    return done.popen.returncode, done.stdout().splitlines()


def test_a_wrong_twilio_token_is_retried_not_blamed_on_the_customer(
    wrong_token: Services, api: TwilioApi, caplog: pytest.LogCaptureFixture
) -> None:
    complaint = other_complaint(wrong_token, Channel.PHONE, TEXT, Customer(phone=PHONE))
    acknowledger = Acknowledger(wrong_token, max_attempts=3)

    with caplog.at_level(logging.ERROR, logger="intake.acks"):
        assert acknowledger.settle(complaint) is False
        assert acknowledger.settle(complaint) is False
    row = ack_row(wrong_token, complaint.id)

    assert row is not None
    assert (row.status, row.attempts) == ("sending", 2)
    assert len(api.recorded()) == 2
    alarms = [r for r in caplog.records if "configuration" in r.getMessage()]
    assert len(alarms) == 1  # once, not once per complaint or attempt
    assert "401 20003" in alarms[0].getMessage()


def test_at_its_deadline_it_is_failed_with_our_reason_and_published(
    wrong_token: Services,
) -> None:
    complaint = other_complaint(wrong_token, Channel.PHONE, TEXT, Customer(phone=PHONE))

    failed_for_good(wrong_token, complaint)
    row = ack_row(wrong_token, complaint.id)

    assert row is not None
    assert (row.status, row.reason) == (FAILED, "provider_account")
    assert event_kinds(wrong_token) == ["ack.failed"]


def test_once_the_token_is_fixed_ack_retry_has_the_worker_send_it(
    wrong_token: Services,
    settings: Settings,
    api: TwilioApi,
    intake_processes: IntakeProcesses,
) -> None:
    complaint = other_complaint(wrong_token, Channel.PHONE, TEXT, Customer(phone=PHONE))
    failed_for_good(wrong_token, complaint)
    fixed = build_services(twilio_settings(settings, api, AUTH_TOKEN))
    try:
        code, lines = retry(intake_processes, settings, "--reason", "provider_account")
        with running_worker(fixed):
            row = wait_for_row(fixed, complaint.id, "sent")
        kinds = event_kinds(fixed)
    finally:
        fixed.close()

    assert code == 0
    assert lines == [f"{complaint.reference}\treopened\tsms"]
    assert row.reopened == 1
    last = api.recorded()[-1]
    assert (last.form["To"], complaint.reference in last.form["Body"]) == (PHONE, True)
    assert kinds == ["ack.failed", "ack.sent"]


def test_retry_leaves_out_complaints_past_their_10_day_window(
    wrong_token: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    late = other_complaint(
        wrong_token,
        Channel.PHONE,
        TEXT,
        Customer(phone=PHONE),
        received_ago=timedelta(days=11),
    )
    failed_for_good(wrong_token, late)

    code, lines = retry(intake_processes, settings, late.reference)

    assert code == 1
    assert lines == [f"{late.reference}\t{NOT_RETRYABLE}\t"]
    assert ack_row(wrong_token, late.id).status == FAILED  # type: ignore[union-attr]


def test_retry_leaves_a_recipient_who_had_today_s_allowance_for_another_day(
    wrong_token: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    complaint = other_complaint(wrong_token, Channel.PHONE, TEXT, Customer(phone=PHONE))
    failed_for_good(wrong_token, complaint)
    cap = wrong_token.settings.ack_max_per_recipient_per_day
    for n in range(cap):  # today's places of that number, taken by other complaints
        other = other_complaint(wrong_token, Channel.PHONE, f"{TEXT} ({n})", Customer(phone=PHONE))
        Acknowledger(wrong_token).acks.claim(other, {"method": "sms", "recipient": PHONE}, cap)

    code, lines = retry(intake_processes, settings, complaint.reference)

    assert code == 1
    assert lines == [f"{complaint.reference}\trecipient_daily_limit\tsms"]
    assert ack_row(wrong_token, complaint.id).status == FAILED  # type: ignore[union-attr]


def test_once_the_token_is_fixed_ack_retry_brings_a_deferred_one_forward(
    wrong_token: Services,
    settings: Settings,
    api: TwilioApi,
    intake_processes: IntakeProcesses,
) -> None:
    complaint = other_complaint(wrong_token, Channel.PHONE, TEXT, Customer(phone=PHONE))
    deferred(wrong_token, complaint)

    code, lines = retry(intake_processes, settings, "--reason", "provider_account")
    row = ack_row(wrong_token, complaint.id)
    assert row is not None and row.retry_at is not None
    assert (row.status, row.attempts) == (SENDING, 0)
    assert row.retry_at <= datetime.now(UTC)  # due now, not in minutes
    fixed = build_services(twilio_settings(settings, api, AUTH_TOKEN))
    try:
        assert Acknowledger(fixed).resend_due() == 1  # the workers' poll
        sent = ack_row(fixed, complaint.id)
        kinds = event_kinds(fixed)
    finally:
        fixed.close()

    assert code == 0
    assert lines == [f"{complaint.reference}\treopened\tsms"]
    assert sent is not None and sent.status == "sent"
    assert api.recorded()[-1].form["To"] == PHONE
    assert kinds == ["ack.sent"]  # never failed


def test_retry_leaves_alone_a_deferred_one_a_worker_is_sending(
    wrong_token: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    complaint = other_complaint(wrong_token, Channel.PHONE, TEXT, Customer(phone=PHONE))
    deferred(wrong_token, complaint)
    acks = Acknowledger(wrong_token, senders={}).acks
    due = ack_row(wrong_token, complaint.id).retry_at  # type: ignore[union-attr]
    assert acks.take_retry(complaint.id, RETRY_LEASE, now=due)  # a worker's, mid-send
    taken = ack_row(wrong_token, complaint.id)

    code, lines = retry(intake_processes, settings, complaint.reference)

    assert code == 1
    assert lines == [f"{complaint.reference}\t{NOT_RETRYABLE}\t"]
    assert ack_row(wrong_token, complaint.id) == taken  # the worker's lease untouched


def test_retry_re_opens_a_refusal_for_good_only_when_its_reason_is_named(
    settings: Settings, api: TwilioApi, intake_processes: IntakeProcesses
) -> None:
    refused = "+212662000111"
    api.invalid_numbers.add(refused)
    services = build_services(twilio_settings(settings, api, AUTH_TOKEN))
    try:
        complaint = other_complaint(services, Channel.PHONE, TEXT, Customer(phone=refused))
        assert Acknowledger(services).settle(complaint) is True
        assert ack_row(services, complaint.id).reason == "recipient_refused"  # type: ignore[union-attr]

        plain = retry(intake_processes, settings)
        after_plain = ack_row(services, complaint.id)
        named = retry(intake_processes, settings, "--reason", "recipient_refused")
        after_named = ack_row(services, complaint.id)
    finally:
        services.close()

    assert plain == (0, [])
    assert after_plain is not None and after_plain.status == FAILED
    assert named == (0, [f"{complaint.reference}\treopened\tsms"])
    assert after_named is not None and after_named.status == SENDING
