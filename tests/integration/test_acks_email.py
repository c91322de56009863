"""E-mail acknowledgements end to end: RabbitMQ queue -> worker -> a real SMTP relay (aiosmtpd).

Complaints are recorded through the e-mail channel's own intake, published
by the relay to the machine's RabbitMQ, consumed from ``complaints.acks`` by
the worker, and the acknowledgement is read back from the capturing relay:
headers, threading, language, right-to-left HTML, and what is never sent.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from config.settings import Settings
from gateway.services import Services, build_services
from normalizer.contract import Channel, Customer
from tests.peers.acks import (
    ack_events,
    ack_row,
    mail_complaint,
    other_complaint,
    publish,
    running_worker,
    wait_for_row,
)
from tests.peers.processes import IntakeProcesses, env_for, free_port, wait_until
from tests.peers.smtp_capture import REFUSED_FOR_GOOD, SmtpCapture, smtp_capture

FRENCH = "Bonjour, mon transfert de 2000 dirhams vers Fès n'est jamais arrivé. Merci de vérifier."
DARIJA = "salam, bghit n3ref 3lach lflouss ma wslatch l khouya f fes, sifthom lbareh mn l agence"


@pytest.fixture
def relay() -> Iterator[SmtpCapture]:
    with smtp_capture() as capture:
        yield capture


def services_for(settings: Settings, **changes: object) -> Services:
    return build_services(settings.model_copy(update=changes))


@pytest.fixture
def services(amqp_settings: Settings, relay: SmtpCapture) -> Iterator[Services]:
    built = services_for(amqp_settings, smtp_relay_url=_secret(relay.url))
    try:
        yield built
    finally:
        built.close()


def _secret(url: str) -> object:
    from pydantic import SecretStr

    return SecretStr(url)


def delivered(relay: SmtpCapture, count: int) -> list:  # type: ignore[type-arg]
    return wait_until(
        lambda: relay.messages() if len(relay.messages()) >= count else None,
        f"{count} message(s) at the relay",
    )


def test_email_complaint_gets_a_threaded_auto_reply_with_its_reference(
    services: Services, relay: SmtpCapture
) -> None:
    complaint = mail_complaint(services, FRENCH)
    publish(services)
    with running_worker(services):
        [mail] = delivered(relay, 1)
        wait_for_row(services, complaint.id, "sent")

    headers = mail.message
    assert mail.rcpt_tos == ["fatima.alaoui@example.ma"]
    assert mail.mail_from == "contact@cashplus.ma"
    assert headers["In-Reply-To"] == complaint.evidence.message_id
    assert headers["References"] == complaint.evidence.message_id
    assert headers["Auto-Submitted"] == "auto-replied"
    assert re.fullmatch(
        rf"<ack\.{complaint.reference}\.[0-9a-f]{{16}}@intake\.cashplus\.ma>", headers["Message-ID"]
    )
    assert complaint.reference in headers["Subject"]
    assert headers["Content-Language"] == "fr"
    assert complaint.reference in mail.part("plain")
    assert "40 jours" in mail.part("plain")
    assert "répondez simplement à ce message" in mail.part("plain")


def test_darija_complaint_is_acknowledged_in_arabic_with_french_below_and_rtl_html(
    services: Services, relay: SmtpCapture
) -> None:
    complaint = mail_complaint(services, DARIJA)
    publish(services)
    with running_worker(services):
        [mail] = delivered(relay, 1)

    text, html = mail.part("plain"), mail.part("html")
    assert complaint.language.tag.startswith("ary")
    assert mail.message["Content-Language"] == "ar, fr"
    assert text.index("توصلنا بشكايتكم") < text.index("Nous avons bien reçu")
    assert '<html lang="ar" dir="rtl">' in html
    assert '<div lang="ar" dir="rtl"' in html
    assert '<div lang="fr" dir="ltr"' in html
    assert f'dir="ltr" style="white-space:nowrap;">{complaint.reference}</bdi>' in html


def test_a_redelivered_complaint_is_not_acknowledged_twice(
    services: Services, relay: SmtpCapture
) -> None:
    complaint = mail_complaint(services, FRENCH)
    publish(services)
    with running_worker(services) as worker:
        delivered(relay, 1)
        wait_for_row(services, complaint.id, "sent")
        services.store.outbox.replay_since(complaint.received_at - timedelta(minutes=1))
        publish(services)
        wait_until(lambda: worker.handled >= 2, "the worker to see the complaint again")

    assert len(relay.messages()) == 1


def test_a_follow_up_gets_no_acknowledgement(services: Services, relay: SmtpCapture) -> None:
    first = mail_complaint(services, FRENCH)
    follow_up = mail_complaint(
        services,
        "J'ajoute le reçu de l'opération, merci.",
        subject=f"Re: Votre réclamation {first.reference}",
    )
    publish(services)
    with running_worker(services):
        wait_for_row(services, follow_up.id, "skipped")
        wait_for_row(services, first.id, "sent")

    assert follow_up.follow_up_of == first.reference
    assert [mail.message["In-Reply-To"] for mail in relay.messages()] == [first.evidence.message_id]
    assert ack_row(services, follow_up.id).reason == "follow_up"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("noreply@bank-notifications.example.ma", "robot_address"),
        ("MAILER-DAEMON@mx.example.ma", "robot_address"),
        ("contact@cashplus.ma", "own_address"),
    ],
)
def test_robots_and_our_own_address_never_get_an_acknowledgement(
    services: Services, relay: SmtpCapture, sender: str, reason: str
) -> None:
    # Through the API: the e-mail channel already keeps bounces and robots out of the queue.
    complaint = other_complaint(services, Channel.API, FRENCH, Customer(email=sender))
    publish(services)
    with running_worker(services):
        row = wait_for_row(services, complaint.id, "skipped")

    assert row.reason == reason
    assert relay.messages() == []


def test_a_recipient_gets_no_more_than_the_daily_cap(
    amqp_settings: Settings, relay: SmtpCapture
) -> None:
    services = services_for(
        amqp_settings, smtp_relay_url=_secret(relay.url), ack_max_per_recipient_per_day=2
    )
    try:
        complaints = [mail_complaint(services, f"{FRENCH} (envoi {n})") for n in range(3)]
        publish(services)
        with running_worker(services):
            rows = [wait_for_row(services, c.id, "sent", "skipped") for c in complaints]
    finally:
        services.close()

    assert [row.status for row in rows] == ["sent", "sent", "skipped"]
    assert rows[2].reason == "recipient_daily_limit"
    assert len(relay.messages()) == 2


def test_a_web_form_complaint_gets_an_auto_generated_message_not_a_reply(
    services: Services, relay: SmtpCapture
) -> None:
    customer = Customer(name="Youssef", email="youssef@example.ma", preferred_language="es")
    complaint = other_complaint(services, Channel.WEBFORM, FRENCH, customer)
    publish(services)
    with running_worker(services):
        [mail] = delivered(relay, 1)

    assert complaint.reference in mail.message["Subject"]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message["In-Reply-To"] is None
    assert mail.message["Content-Language"] == "es"  # the customer's choice wins


def test_a_relay_that_is_down_leaves_the_complaint_on_the_queue_until_it_is_back(
    amqp_settings: Settings,
) -> None:
    port = free_port()
    services = services_for(amqp_settings, smtp_relay_url=_secret(f"smtp://127.0.0.1:{port}"))
    try:
        complaint = mail_complaint(services, FRENCH)
        publish(services)
        with running_worker(services):
            wait_until(
                lambda: _attempts(services, complaint.id) >= 1,
                "a failed attempt to reach the relay",
            )
            with smtp_capture(port) as relay:
                row = wait_for_row(services, complaint.id, "sent")
                [mail] = delivered(relay, 1)
    finally:
        services.close()

    assert row.attempts >= 1
    assert mail.message["Message-ID"] == row.message_id


def test_a_refused_recipient_is_recorded_as_failed_and_published(
    services: Services, relay: SmtpCapture
) -> None:
    relay.handler.refuse["gone@example.ma"] = REFUSED_FOR_GOOD
    complaint = mail_complaint(services, FRENCH, sender="gone@example.ma")
    publish(services)
    with running_worker(services):
        row = wait_for_row(services, complaint.id, "failed")
    [event] = ack_events(services, 1)

    assert row.reason == "recipient_refused"
    assert event["type"] == "ma.cashplus.intake.ack.failed.v1"
    assert event["data"]["details"]["reference"] == complaint.reference
    assert event["data"]["details"]["detail"].startswith("550")


def test_each_sent_acknowledgement_is_published_with_its_time_for_the_10_day_proof(
    services: Services, relay: SmtpCapture
) -> None:
    complaint = mail_complaint(services, FRENCH)
    publish(services)
    with running_worker(services):
        row = wait_for_row(services, complaint.id, "sent")
    [event] = ack_events(services, 1)

    details = event["data"]["details"]
    assert event["type"] == "ma.cashplus.intake.ack.sent.v1"
    assert details["complaint_id"] == complaint.id
    assert details["method"] == "email"
    assert details["within_deadline"] is True
    assert _moment(details["at"]) == _moment(event["time"])
    assert row.sent_at is not None
    assert event["data"]["evidence"]["content_type"] == "message/rfc822"


def test_the_ack_worker_process_acknowledges_and_stops_cleanly_on_sigterm(
    amqp_settings: Settings, relay: SmtpCapture, intake_processes: IntakeProcesses
) -> None:
    services = services_for(amqp_settings, smtp_relay_url=_secret(relay.url))
    try:
        complaint = mail_complaint(services, FRENCH)
        env = env_for(amqp_settings, smtp_relay_url=relay.url)
        worker = intake_processes.start("ack-worker", env=env)
        intake_processes.run("relay", "--once", env=env)
        [mail] = delivered(relay, 1)
        worker.signal(signal.SIGTERM)
        code = worker.wait(30)
    finally:
        services.close()

    assert complaint.reference in mail.message["Subject"]
    assert code == 0, worker.describe()


def _attempts(services: Services, complaint_id: str) -> int:
    row = ack_row(services, complaint_id)
    return row.attempts if row else 0


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_worker_also_runs_on_the_embedded_broker(settings: Settings) -> None:
    with smtp_capture() as relay:
        services = services_for(settings, smtp_relay_url=_secret(relay.url))
        try:
            complaint = mail_complaint(services, FRENCH)
            with running_worker(services):
                publish(services)
                [mail] = delivered(relay, 1)
                wait_for_row(services, complaint.id, "sent")
        finally:
            services.close()

    assert complaint.reference in mail.message["Subject"]
