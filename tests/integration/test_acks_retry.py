"""A wrong Twilio setting, then ``intake ack retry``: nothing is lost for good.

The real twilio client talks to the local stand-in of Twilio's API with a
wrong auth token: Twilio answers 401 (code 20003), which is our
configuration, not the customer's number. The acknowledgement is retried,
logged as an error once, recorded as failed after the allowed attempts,
and once the token is fixed ``intake ack retry`` (a real subprocess)
re-opens it and the running worker sends it. Complaints past their 10-day
window, and recipients who already had today's allowance, are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from channels.acks.acknowledger import Acknowledger
from channels.acks.store import FAILED
from config.settings import Settings
from gateway.services import Services, build_services
from gateway.store.db import reading
from gateway.store.models import EventRow
from normalizer.contract import Channel, ComplaintMessage, Customer
from tests.peers.acks import ack_row, other_complaint, running_worker, wait_for_row
from tests.peers.processes import IntakeProcesses, env_for
from tests.peers.twilio_api import ACCOUNT_SID, AUTH_TOKEN, TwilioApi, twilio_api

PHONE = "+212661234567"
TEXT = "Bonjour, ma carte a été bloquée au guichet de Derb Omar ce matin."


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with twilio_api() as stand_in:
        yield stand_in


def twilio_settings(settings: Settings, api: TwilioApi, token: str) -> Settings:
    return settings.model_copy(
        update={
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": SecretStr(token),
            "twilio_api_base_url": api.url,
            "twilio_phone_number": "+212520020915",
        }
    )


@pytest.fixture
def wrong_token(settings: Settings, api: TwilioApi) -> Iterator[Services]:
    built = build_services(twilio_settings(settings, api, "a-token-that-was-revoked"))
    try:
        yield built
    finally:
        built.close()


def event_kinds(services: Services) -> list[str]:
    with reading(services.store.engine) as session:
        return list(session.scalars(select(EventRow.kind).order_by(EventRow.created_at)))


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
    assert lines == [f"{late.reference}\tnot failed, or past its 10-day window\t"]
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
