"""Delivery, not hand-off: what Twilio and bounces report of our acknowledgements.

The real ``twilio`` client sends to the local stand-in of Twilio's API,
which then posts the message's status to the ``StatusCallback`` it named,
signed as Twilio signs it, to the real app on a real port. E-mail
acknowledgements go through a real SMTP relay (aiosmtpd) with a VERP return
path; the bounce comes back over SMTP (the stdlib client) to the gateway's
own receiver, as an RFC 3464 report. PostgreSQL and RabbitMQ are the
machine's.

An undelivered SMS is sent again by e-mail, a bounced e-mail by SMS; each
send publishes its own ``ack.sent``; repeated and late reports change
nothing; a forged callback is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from channels.email.imap.poller import poll_once
from channels.email.staged import drain_mail_captures
from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.acks.senders.sms import STATUS_CALLBACK_PATH
from gateway.lib.services import Services, build_services
from gateway.store.acks import AckRecord
from gateway.store.db import reading
from gateway.store.tables import EventRow
from normalizer.contract import Channel, ComplaintMessage, Customer, IntakeEvent
from tests.integration.test_smtp import RunningSmtp, running_smtp
from tests.peers.acks import ack_events, other_complaint, publish, running_worker
from tests.peers.bounces import dsn
from tests.peers.dovecot import DovecotServer
from tests.peers.imap import ARRIVED, imap_settings
from tests.peers.processes import IntakeProcesses, env_for, free_port, wait_until
from tests.peers.smtp_capture import SmtpCapture, smtp_capture
from tests.peers.twilio import running_gateway
from tests.peers.twilio_api import TwilioApi, twilio_api, twilio_settings

PUBLIC = "https://intake.cashplus.example"
PHONE = "+212661234567"
EMAIL = "client.delivery@example.org"
OUR_NUMBER = "+212520020915"
BOUNCES = "bounces@intake.cashplus.ma"
TEXT = "Bonjour, mon transfert de 500 dirhams vers Agadir n'est jamais arrivé."


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with twilio_api() as stand_in:
        yield stand_in


@pytest.fixture
def relay() -> Iterator[SmtpCapture]:
    with smtp_capture() as capture:
        yield capture


@pytest.fixture(params=["postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """The store's database: the machine's PostgreSQL (and SQLite where a test asks)."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def configured(
    amqp_settings: Settings, database: str, api: TwilioApi, relay: SmtpCapture
) -> Settings:
    """RabbitMQ, the store's database, Twilio's stand-in, the relay, the SMTP receiver."""
    return twilio_settings(
        amqp_settings.model_copy(update={"database_url": database} if database else {}),
        api,
        twilio_phone_number=OUR_NUMBER,
        public_base_url=PUBLIC,
        smtp_relay_url=SecretStr(relay.url),
        ack_bounce_address=BOUNCES,
        smtp_port=free_port(),
        smtp_recipients="contact@cashplus.ma",
    )


def events(services: Services, kind: str) -> list[IntakeEvent]:
    with reading(services.store.engine) as session:
        payloads = session.scalars(
            select(EventRow.payload).where(EventRow.kind == kind).order_by(EventRow.created_at)
        )
        return [IntakeEvent.model_validate_json(payload) for payload in payloads]


def sent_row(services: Services, complaint: ComplaintMessage, method: str) -> AckRecord:
    def found() -> AckRecord | None:
        row = services.store.acks.get(complaint.id)
        return row if row is not None and (row.status, row.method) == ("sent", method) else None

    return wait_until(found, f"the acknowledgement sent by {method}")


def test_an_sms_reported_undelivered_is_sent_again_by_email(
    configured: Settings, api: TwilioApi, relay: SmtpCapture
) -> None:
    with running_gateway(configured) as gateway:
        services = gateway.services
        complaint = other_complaint(
            services, Channel.PHONE, TEXT, Customer(phone=PHONE, email=EMAIL)
        )
        with running_worker(services):
            publish(services)  # the complaint reaches the worker through RabbitMQ
            sent_row(services, complaint, "sms")
            [sms] = api.recorded()
            assert sms.form["StatusCallback"] == PUBLIC + STATUS_CALLBACK_PATH

            assert api.report_status(sms, "sent", gateway=gateway.base_url).status_code == 204
            assert relay.messages() == []  # handed over is not undelivered
            answer = api.report_status(
                sms, "undelivered", gateway=gateway.base_url, error_code=30003
            )
            assert answer.status_code == 204

            row = sent_row(services, complaint, "email")  # the workers' poll fell back
        [mail] = relay.messages()
        assert mail.rcpt_tos == [EMAIL]
        assert complaint.reference in mail.message["Subject"]
        assert row.rounds == 1
        [undelivered] = events(services, "ack.undelivered")
        assert undelivered.details["method"] == "sms"
        assert undelivered.details["error"] == "30003"
        assert undelivered.details["provider_id"] == sms.sid
        form = services.store.blobs.get(undelivered.evidence.stored_at)
        assert b"MessageStatus=undelivered" in form  # the callback, kept as evidence

        published = ack_events(services, 3)  # downstream sees both sends, the failure between
        kinds = sorted(event["data"]["kind"] for event in published)
        assert kinds == ["ack.sent", "ack.sent", "ack.undelivered"]
        methods = sorted(
            event["data"]["details"]["method"]
            for event in published
            if event["data"]["kind"] == "ack.sent"
        )
        assert methods == ["email", "sms"]


def test_a_forged_status_callback_is_refused(configured: Settings, api: TwilioApi) -> None:
    with running_gateway(configured) as gateway:
        services = gateway.services
        complaint = other_complaint(services, Channel.SMS, TEXT, Customer(phone=PHONE))
        Acknowledger(services).handle(complaint)
        [sms] = api.recorded()

        forged = api.report_status(
            sms, "undelivered", gateway=gateway.base_url, token="not-the-auth-token-000000"
        )

        assert forged.status_code == 403
        row = services.store.acks.get(complaint.id)
        assert row is not None and (row.status, row.rounds) == ("sent", 0)
        assert events(services, "ack.undelivered") == []


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
def test_repeated_and_late_callbacks_change_nothing(
    configured: Settings, api: TwilioApi, relay: SmtpCapture
) -> None:
    with running_gateway(configured) as gateway:
        services = gateway.services
        complaint = other_complaint(services, Channel.SMS, TEXT, Customer(phone=PHONE, email=EMAIL))
        acknowledger = Acknowledger(services)
        acknowledger.handle(complaint)
        [sms] = api.recorded()

        for status in ("sent", "delivered", "delivered", "sent", "undelivered", "queued"):
            answer = api.report_status(sms, status, gateway=gateway.base_url, error_code=None)
            assert answer.status_code == 204, status

        assert acknowledger.resend_due() == 0  # nothing to send again
        row = services.store.acks.get(complaint.id)
        assert row is not None and (row.status, row.method, row.rounds) == ("sent", "sms", 0)
        assert [e.details["status"] for e in events(services, "ack.delivered")] == ["delivered"]
        assert events(services, "ack.undelivered") == []
        report = services.store.deliveries.delivery_report()
        assert report.counts["sms"]["delivered"] == 1 and report.undelivered == []
        assert relay.messages() == []


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
def test_an_undelivered_report_sends_again_once_and_old_reports_are_ignored(
    configured: Settings, api: TwilioApi, relay: SmtpCapture
) -> None:
    with running_gateway(configured) as gateway:
        services = gateway.services
        complaint = other_complaint(services, Channel.SMS, TEXT, Customer(phone=PHONE, email=EMAIL))
        acknowledger = Acknowledger(services)
        acknowledger.handle(complaint)
        [sms] = api.recorded()

        for status in ("undelivered", "undelivered", "delivered", "read"):
            answer = api.report_status(sms, status, gateway=gateway.base_url, error_code=30005)
            assert answer.status_code == 204, status
        assert acknowledger.resend_due() == 1  # one undelivered send, one more send
        assert acknowledger.resend_due() == 0
        # The old message's last word, after the e-mail went out: nothing changes.
        assert api.report_status(sms, "failed", gateway=gateway.base_url).status_code == 204

        assert acknowledger.resend_due() == 0
        [mail] = relay.messages()
        assert mail.rcpt_tos == [EMAIL]
        row = services.store.acks.get(complaint.id)
        assert row is not None and (row.status, row.method, row.rounds) == ("sent", "email", 1)
        assert len(events(services, "ack.undelivered")) == 1
        assert events(services, "ack.delivered") == []
        assert len(events(services, "ack.sent")) == 2


@contextmanager
def receiver(settings: Settings) -> Iterator[RunningSmtp]:
    with running_smtp(settings) as running:
        yield running


def bounce_over_smtp(smtp: RunningSmtp, rcpt: str, report: bytes) -> int:
    """A bounce as a receiving server sends it: null return path, to our address.

    The receiver answers once the bounce is captured; it is read by the runner
    beside it, waited for here.
    """
    with smtp.client() as client:
        client.ehlo("mx.example.org")
        assert client.mail("")[0] == 250
        assert client.rcpt(rcpt)[0] == 250
        code, _text = client.data(report)
    smtp.settle()
    return code


def test_a_bounced_email_is_undelivered_and_sent_again_by_sms(
    configured: Settings,
    api: TwilioApi,
    relay: SmtpCapture,
    intake_processes: IntakeProcesses,
) -> None:
    with receiver(configured) as smtp:
        services = smtp.services
        complaint = other_complaint(
            services, Channel.WEBFORM, TEXT, Customer(email=EMAIL, phone=PHONE)
        )
        acknowledger = Acknowledger(services)
        first = acknowledger.handle(complaint)
        [mail] = relay.messages()
        assert mail.mail_from == f"bounces+{first.id}@intake.cashplus.ma"  # VERP
        message_id = mail.message["Message-ID"]
        report = dsn(to=mail.mail_from, original_message_id=message_id, recipient=EMAIL)

        assert bounce_over_smtp(smtp, mail.mail_from, report) == 250

        row = services.store.acks.get(complaint.id)
        assert row is not None and (row.status, row.rounds) == ("undelivered", 1)
        assert acknowledger.resend_due() == 1
        [sms] = api.recorded()
        assert sms.form["To"] == PHONE and complaint.reference in sms.form["Body"]
        row = services.store.acks.get(complaint.id)
        assert row is not None and (row.status, row.method) == ("sent", "sms")
        [undelivered] = events(services, "ack.undelivered")
        assert undelivered.details["error"] == "5.1.1"
        kept = services.store.blobs.get(undelivered.evidence.stored_at)
        assert b"Action: failed" in kept and message_id.encode() in kept  # the DSN itself

        # The same report again (the server did not see our 250): the same capture
        # (its bytes' hash), nothing recorded or sent again.
        assert bounce_over_smtp(smtp, mail.mail_from, report) == 250
        assert len(events(services, "ack.undelivered")) == 1
        assert services.store.captures.outcomes() == {"bounce": 1}
        assert acknowledger.resend_due() == 0 and len(api.recorded()) == 1

    done = intake_processes.run("ack", "report", "--deliveries", env=env_for(configured))
    [header, line] = done.stdout().splitlines()
    assert header.startswith("reference\tmethod\tstatus")
    assert line.split("\t")[:3] == [complaint.reference, "email", "undelivered"]
    assert line.split("\t")[5:] == ["yes", "sent by sms"]
    assert "email: 0 delivered, 1 undelivered (1 re-sent), 0 pending delivery" in done.stderr()


def test_a_bounce_to_our_inbox_is_found_by_the_acknowledgements_message_id(
    configured: Settings, api: TwilioApi, relay: SmtpCapture
) -> None:
    no_verp = configured.model_copy(update={"ack_bounce_address": ""})
    with receiver(no_verp) as smtp:
        services = smtp.services
        complaint = other_complaint(
            services, Channel.WEBFORM, TEXT, Customer(email=EMAIL, phone=PHONE)
        )
        Acknowledger(services).handle(complaint)
        [mail] = relay.messages()
        assert mail.mail_from == "contact@cashplus.ma"
        report = dsn(
            to="contact@cashplus.ma",
            original_message_id=mail.message["Message-ID"],
            returned="message",
        )

        assert bounce_over_smtp(smtp, "contact@cashplus.ma", report) == 250

        row = services.store.acks.get(complaint.id)
        assert row is not None and row.status == "undelivered"
        assert services.store.complaints.get_by_reference(complaint.reference) is not None
        assert events(services, "email.autoreply") == []  # not an auto-reply: a bounce of ours


def test_a_delay_warning_or_a_stranger_bounce_stays_an_auto_reply(
    configured: Settings, relay: SmtpCapture
) -> None:
    with receiver(configured) as smtp:
        services = smtp.services
        complaint = other_complaint(services, Channel.WEBFORM, TEXT, Customer(email=EMAIL))
        first = Acknowledger(services).handle(complaint)
        [mail] = relay.messages()
        delayed = dsn(
            to=mail.mail_from,
            original_message_id=mail.message["Message-ID"],
            action="delayed",
            status="4.4.1",
        )
        stranger = dsn(to=BOUNCES, original_message_id="<someone-else@example.net>")

        assert bounce_over_smtp(smtp, mail.mail_from, delayed) == 250
        assert bounce_over_smtp(smtp, BOUNCES, stranger) == 250

        row = services.store.acks.get(complaint.id)
        assert row is not None and (row.status, row.id) == ("sent", first.id)
        assert len(events(services, "email.autoreply")) == 2  # both kept as evidence
        assert events(services, "ack.undelivered") == []


def test_the_receiver_refuses_addresses_that_are_not_our_return_path(
    configured: Settings,
) -> None:
    with receiver(configured) as smtp, smtp.client() as client:
        client.ehlo("mx.example.org")
        client.mail("")
        assert client.rcpt("bounces+0f9c2b4e@intake.cashplus.ma")[0] == 250
        assert client.rcpt("other+0f9c2b4e@intake.cashplus.ma")[0] == 550
        assert client.rcpt("bounces+0f9c2b4e@elsewhere.example")[0] == 550


def test_a_bounce_in_the_imap_inbox_is_taken_as_the_acknowledgements_and_filed(
    configured: Settings, api: TwilioApi, relay: SmtpCapture, dovecot: DovecotServer
) -> None:
    account = dovecot.add_user()
    services = build_services(imap_settings(configured, account))
    try:
        complaint = other_complaint(
            services, Channel.WEBFORM, TEXT, Customer(email=EMAIL, phone=PHONE)
        )
        acknowledger = Acknowledger(services)
        acknowledger.handle(complaint)
        [mail] = relay.messages()
        report = dsn(to=mail.mail_from, original_message_id=mail.message["Message-ID"])
        dovecot.append(account, report, ARRIVED)

        tally = poll_once(services)
        stats = drain_mail_captures(services)

        assert (tally.captured, stats.finished, stats.quarantined) == (1, 1, 0)
        assert dovecot.count(account, services.settings.imap_processed_folder) == 1
        row = services.store.acks.get(complaint.id)
        assert row is not None and row.status == "undelivered"
        assert acknowledger.resend_due() == 1
        [sms] = api.recorded()
        assert sms.form["To"] == PHONE
    finally:
        services.close()
