"""E-mail acknowledgements end to end: RabbitMQ queue -> worker -> a real SMTP relay (aiosmtpd).

Complaints are recorded through the e-mail channel's own intake, published
by the relay to the machine's RabbitMQ, consumed from ``complaints.acks`` by
the worker, and the acknowledgement is read back from the capturing relay:
headers, threading, language, right-to-left HTML, and what is never sent.
"""

from __future__ import annotations

import dataclasses
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from channels.email.intake import MailArrival, ingest_mail
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store.acks import AckRecord
from normalizer.contract import Channel, ComplaintMessage, Customer
from tests.peers.acks import (
    TRUSTED_MX,
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
    # Our own subject with the reference, never theirs (S5); threading by the headers above.
    assert headers["Subject"] == f"Votre réclamation {complaint.reference} est bien reçue"
    assert headers["Content-Language"] == "fr"
    # In the first sentence instead, which inbox previews show.
    assert complaint.reference in "\n".join(mail.part("plain").splitlines()[:3])
    assert "40 jours" in mail.part("plain")
    assert "répondez simplement à ce message" in mail.part("plain")


def test_the_reply_continues_the_customers_references_chain_under_our_subject(
    services: Services, relay: SmtpCapture
) -> None:
    chain = [f"<earlier.{n}@example.ma>" for n in range(12)]
    complaint = threaded_mail_complaint(services, "Re: Virement bloqué", chain)
    publish(services)
    with running_worker(services):
        [mail] = delivered(relay, 1)

    references = mail.message["References"].split()
    # RFC 5322 3.6.4: their References, then their Message-ID; trimmed to the
    # thread's root and the latest ids.
    assert references == [chain[0], *chain[-8:], complaint.evidence.message_id]
    assert mail.message["In-Reply-To"] == complaint.evidence.message_id
    assert "Virement" not in mail.message["Subject"]
    assert complaint.reference in mail.message["Subject"]


def threaded_mail_complaint(services: Services, subject: str, chain: list[str]) -> ComplaintMessage:
    """A customer's e-mail answering a thread of their own (ids the gateway never sent)."""
    mail = EmailMessage()
    mail["Authentication-Results"] = f"{TRUSTED_MX}; dmarc=pass header.from=example.ma"
    mail["From"] = "Fatima Alaoui <fatima.alaoui@example.ma>"
    mail["To"] = "contact@cashplus.ma"
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="example.ma")
    mail["In-Reply-To"] = chain[-1]
    mail["References"] = " ".join(chain)
    mail.set_content(FRENCH)
    sender = "fatima.alaoui@example.ma"
    arrival = MailArrival(
        raw=mail.as_bytes(), received_at=datetime.now(UTC), envelope_sender=sender
    )
    trusting = services.settings.model_copy(update={"trusted_authserv_ids": TRUSTED_MX})
    result = ingest_mail(dataclasses.replace(services, settings=trusting), arrival)
    found = services.store.complaints.get_by_reference(str(result.reference))
    assert found is not None and found.follow_up_of is None
    return found


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

    assert complaint.reference in mail.part("plain")
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

    assert complaint.reference in mail.part("plain")


PHISHING_NAME = "client. URGENT : votre carte Cash Plus est suspendue, reactivez-la sur"
PHISHING_URL = "https://cashplus-verif.example/reactiver"
PHISHING_SUBJECT = f"URGENT carte suspendue {PHISHING_URL} sous 24h"


def no_stranger_text(raw: bytes) -> None:
    """Nothing of the attacker's: not the URL, not the name, not the subject, in any part."""
    sent = raw.decode("utf-8", "replace")
    for text in (PHISHING_URL, "cashplus-verif", "URGENT", "reactivez", "suspendue"):
        assert text not in sent, text


def test_a_web_form_acknowledgement_carries_no_text_the_form_sender_typed(
    services: Services, relay: SmtpCapture
) -> None:
    # S5, as probed: the form's name (free text, URLs allowed) went into "Bonjour <name>"
    # and the To header of a genuine mail from contact@cashplus.ma to any address.
    customer = Customer(name=f"{PHISHING_NAME} {PHISHING_URL}", email="victime@example.ma")
    complaint = other_complaint(services, Channel.WEBFORM, FRENCH, customer)
    publish(services)
    with running_worker(services):
        [mail] = delivered(relay, 1)

    no_stranger_text(mail.raw)
    for subtype in ("plain", "html"):
        no_stranger_text(mail.part(subtype).encode())
    assert mail.message["To"] == "victime@example.ma"
    assert mail.part("plain").startswith("Bonjour,")
    assert complaint.reference in mail.message["Subject"]


def test_an_email_acknowledgement_carries_neither_their_subject_nor_their_name(
    services: Services, relay: SmtpCapture
) -> None:
    complaint = mail_complaint(
        services, FRENCH, name=PHISHING_NAME, subject=PHISHING_SUBJECT, sender="a@example.ma"
    )
    publish(services)
    with running_worker(services):
        [mail] = delivered(relay, 1)

    no_stranger_text(mail.raw)
    for subtype in ("plain", "html"):
        no_stranger_text(mail.part(subtype).encode())
    assert mail.message["Subject"] == f"Votre réclamation {complaint.reference} est bien reçue"
    assert mail.message["In-Reply-To"] == complaint.evidence.message_id  # still threaded


@pytest.mark.parametrize("authentication", ["fail", None])
def test_an_email_whose_sender_is_not_authenticated_gets_no_email_acknowledgement(
    services: Services, relay: SmtpCapture, authentication: str | None
) -> None:
    # S5/S12: a forged From would make us send a genuine reply to the victim it names.
    complaint = mail_complaint(
        services, FRENCH, sender="victime@example.ma", authentication=authentication
    )
    genuine = mail_complaint(services, f"{FRENCH} (authentifié)", sender="client@example.ma")
    publish(services)
    with running_worker(services):
        row = wait_for_row(services, complaint.id, "skipped")
        wait_for_row(services, genuine.id, "sent")

    assert row.reason == "sender_not_authenticated"
    assert [mail.rcpt_tos for mail in relay.messages()] == [["client@example.ma"]]


def test_the_global_email_budget_holds_the_rest_until_the_next_day(
    amqp_settings: Settings, relay: SmtpCapture
) -> None:
    services = services_for(
        amqp_settings, smtp_relay_url=_secret(relay.url), ack_email_max_per_day=2
    )
    try:
        customers = [Customer(email=f"client{n}@example.ma") for n in range(3)]
        complaints = [
            other_complaint(services, Channel.WEBFORM, f"{FRENCH} ({n})", customer)
            for n, customer in enumerate(customers)
        ]
        publish(services)
        with running_worker(services):
            rows = [wait_for_row(services, c.id, "sent") for c in complaints[:2]]
            waiting = wait_until(
                lambda: _waiting_for_budget(services, complaints[2].id), "a row waiting"
            )
    finally:
        services.close()

    assert [row.status for row in rows] == ["sent", "sent"]
    assert len(relay.messages()) == 2
    assert waiting is not None and waiting.method is None  # decided again on the next day
    assert waiting.retry_at is not None and waiting.retry_at > datetime.now(UTC)


def _waiting_for_budget(services: Services, complaint_id: str) -> AckRecord | None:
    row = ack_row(services, complaint_id)
    return row if row is not None and row.reason == "daily_budget_exhausted" else None
