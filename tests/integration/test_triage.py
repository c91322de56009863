"""Triage with real peers: spamd, the SMTP receiver, the Twilio webhooks, RabbitMQ, the staff page.

A GTUBE mail and a "STOP" SMS make no complaint and no acknowledgement; the
mail is published as ``event.triage.spam`` on ``complaints.events``; a staff
member turns a non-complaint into a complaint on ``/ops/triage/``, which is
then published (to ``complaints.inbound`` and the acknowledgement worker's
``complaints.acks``) with the deadlines of its original receipt.
"""

from __future__ import annotations

import smtplib
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select

from channels.email.intake import MailArrival, MailOutcome, ingest_mail
from channels.email.smtp import SmtpServer, run_server
from config.settings import Settings
from gateway.lib.http.auth import accounts_for
from gateway.lib.services import Services, build_services
from gateway.lib.spamfilter import SPAM_FILTER_ERRORS
from gateway.store.db import reading
from gateway.store.tables import (
    AcknowledgementRow,
    ComplaintRow,
    EventRow,
    EvidenceRow,
    TriageRow,
)
from normalizer.deadlines import compute_deadlines
from tests.peers.acks import publish
from tests.peers.processes import free_port, wait_until
from tests.peers.queues import drain
from tests.peers.runners import running_normalizer, settled
from tests.peers.spamd import GTUBE, SpamdServer
from tests.peers.staff import CSRF_FIELD, StaffBrowser, log_in_over_http
from tests.peers.twilio import (
    ACCOUNT_SID,
    LINE_NUMBER,
    RunningGateway,
    TwilioWebhooks,
    running_gateway,
    sid,
    twilio_settings,
)

PASSWORD = "tri-2026-casablanca"


def count(services: Services, model: type) -> int:
    with reading(services.store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def gtube_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Promo <promo@offres.example>"
    mail["To"] = "contact@cashplus.ma"
    mail["Subject"] = "Gagnez un iPhone"
    mail["Message-ID"] = "<gtube-1@offres.example>"
    mail.set_content(f"Cliquez ici.\n\n{GTUBE}\n")
    return bytes(mail)


@contextmanager
def smtp_receiver(settings: Settings) -> Iterator[tuple[int, Services]]:
    """The SMTP edge and a normalizer runner beside it, as ``intake run`` has them."""
    port = free_port()
    services = build_services(
        settings.model_copy(update={"smtp_port": port, "smtp_recipients": "contact@cashplus.ma"})
    )
    server = SmtpServer(services)
    stop = threading.Event()
    thread = threading.Thread(target=run_server, args=(server, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.listening or not thread.is_alive(), "the SMTP server")
        with running_normalizer(services):
            yield port, services
    finally:
        stop.set()
        thread.join(15)
        services.close()


def test_gtube_mail_over_smtp_is_no_complaint_and_is_published_as_triage_spam(
    amqp_settings: Settings, spamd: SpamdServer
) -> None:
    settings = amqp_settings.model_copy(update={"spam_filter_url": spamd.url})
    with smtp_receiver(settings) as (port, services):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            refused = client.sendmail("promo@offres.example", ["contact@cashplus.ma"], gtube_mail())
        assert refused == {}
        settled(services)
        assert count(services, ComplaintRow) == 0
        with reading(services.store.engine) as session:
            item = session.scalars(select(TriageRow)).one()
        assert item.kind == "spam" and item.status == "to_sort"
        publish(services)
        assert count(services, AcknowledgementRow) == 0
    (event,) = drain(settings, "events")
    assert event["type"] == "ma.cashplus.intake.triage.spam.v1"
    data = event["data"]
    assert isinstance(data, dict)
    assert data["kind"] == "triage.spam"
    assert data["triage"]["method"] == "filter"
    assert "GTUBE" in " ".join(data["triage"]["reasons"])
    assert data["evidence"]["message_id"] == "<gtube-1@offres.example>"
    # Nothing for downstream's complaints nor for the acknowledgement worker.
    assert drain(settings, "inbound") == []
    assert drain(settings, "acks") == []


def test_spamd_unreachable_keeps_the_mail_as_a_complaint_and_counts_it(
    settings: Settings,
) -> None:
    closed = settings.model_copy(update={"spam_filter_url": f"spamd://127.0.0.1:{free_port()}"})
    services = build_services(closed)
    try:
        arrival = MailArrival(raw=gtube_mail(), received_at=datetime.now(UTC))
        result = ingest_mail(services, arrival)
        assert result.outcome is MailOutcome.COMPLAINT
        assert count(services, ComplaintRow) == 1
        assert services.store.counters.all().get(SPAM_FILTER_ERRORS) == 1
    finally:
        services.close()


def test_a_repeat_of_a_kept_spam_whose_verdict_flips_is_the_same_non_complaint(
    settings: Settings, spamd: SpamdServer
) -> None:
    # The IMAP fetch again after a failed MOVE, an SMTP retry: spamd now down, so
    # no verdict; the first decision sticks: no complaint, no second reference.
    arrival = MailArrival(raw=gtube_mail(), received_at=datetime.now(UTC))
    filtered = build_services(settings.model_copy(update={"spam_filter_url": spamd.url}))
    try:
        first = ingest_mail(filtered, arrival)
    finally:
        filtered.close()
    down = f"spamd://127.0.0.1:{free_port()}"
    unfiltered = build_services(settings.model_copy(update={"spam_filter_url": down}))
    try:
        again = ingest_mail(unfiltered, arrival)
        assert first.outcome is MailOutcome.TRIAGED
        assert again.reference == first.reference
        assert count(unfiltered, ComplaintRow) == 0
        assert count(unfiltered, TriageRow) == 1
    finally:
        unfiltered.close()


def test_spamd_reads_only_the_first_500_kb_of_a_mail_like_spamc(
    settings: Settings, spamd: SpamdServer
) -> None:
    # GTUBE in the text: spam; GTUBE after 600 KB of scans: spamd never sees it.
    filtered = build_services(settings.model_copy(update={"spam_filter_url": spamd.url}))
    try:
        outcomes = []
        for where in ("text", "end"):
            mail = EmailMessage()
            mail["From"] = f"{where}@offres.example"
            mail["To"] = "contact@cashplus.ma"
            mail["Subject"] = "Offre"
            mail["Message-ID"] = f"<big-{where}@offres.example>"
            mail.set_content(f"Cliquez ici. {GTUBE if where == 'text' else ''}\n")
            mail.add_attachment(b"\0" * 600_000, maintype="image", subtype="png", filename="a.png")
            if where == "end":
                mail.add_attachment(GTUBE.encode(), maintype="text", subtype="plain")
            arrival = MailArrival(raw=bytes(mail), received_at=datetime.now(UTC))
            outcomes.append(ingest_mail(filtered, arrival).outcome)
        assert outcomes == [MailOutcome.TRIAGED, MailOutcome.COMPLAINT]
        assert filtered.store.counters.all().get(SPAM_FILTER_ERRORS) is None
    finally:
        filtered.close()


def test_a_newsletter_is_marketing_without_any_filter(settings: Settings) -> None:
    services = build_services(settings)
    try:
        mail = EmailMessage()
        mail["From"] = "news@boutique.example"
        mail["To"] = "contact@cashplus.ma"
        mail["Subject"] = "Nos offres de décembre"
        mail["List-Unsubscribe"] = "<mailto:unsubscribe@boutique.example>"
        mail.set_content("Découvrez nos offres de fin d'année sur tous nos produits.")
        result = ingest_mail(services, MailArrival(raw=bytes(mail), received_at=datetime.now(UTC)))
        assert result.outcome is MailOutcome.TRIAGED
        assert count(services, ComplaintRow) == 0
        (item,) = services.store.triage.listing()
        assert item.kind == "marketing"
    finally:
        services.close()


# -- the phone line and the staff page ---------------------------------------------


@pytest.fixture
def gateway(amqp_settings: Settings) -> Iterator[RunningGateway]:
    with running_gateway(twilio_settings(amqp_settings)) as running:
        accounts_for(running.services).add("karim", PASSWORD, role="operator")
        yield running


@pytest.fixture
def hooks(gateway: RunningGateway) -> Iterator[TwilioWebhooks]:
    webhooks = TwilioWebhooks(target=gateway.base_url)
    yield webhooks
    webhooks.close()


def sms(hooks: TwilioWebhooks, body: str, message_sid: str | None = None) -> ET.Element:
    response = hooks.post(
        "/twilio/messaging",
        {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": message_sid or sid("SM"),
            "From": "+212661234567",
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
        },
    )
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def staff_client(gateway: RunningGateway) -> tuple[StaffBrowser, str]:
    """Logged in as an operator; the page's CSRF token."""
    browser = log_in_over_http(gateway.base_url, ("karim", PASSWORD), "/ops/triage/")
    page = browser.get("/ops/triage/")
    assert page.status_code == 200, page.text[:500]
    csrf = CSRF_FIELD.search(page.text)
    assert csrf
    return browser, csrf.group(1)


@pytest.mark.parametrize("body", ["", "merci"])
def test_a_whatsapp_photo_with_no_text_or_a_thanks_is_a_complaint(
    gateway: RunningGateway, hooks: TwilioWebhooks, body: str
) -> None:
    # The photo is fetched later by the worker: triage must count it already.
    response = hooks.post(
        "/twilio/messaging",
        {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": sid("MM"),
            "From": "whatsapp:+212661234567",
            "To": f"whatsapp:{LINE_NUMBER}",
            "Body": body,
            "NumMedia": "1",
            "MediaUrl0": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Media/ME1",
            "MediaContentType0": "image/jpeg",
        },
    )
    assert response.status_code == 200, response.text
    services = gateway.services
    wait_until(lambda: count(services, ComplaintRow) == 1, "the photo's complaint")
    assert count(services, TriageRow) == 0


def test_a_stop_sms_makes_no_complaint_no_reply_and_no_acknowledgement(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    message_sid = sid("SM")
    reply = sms(hooks, "STOP", message_sid)
    assert list(reply) == []  # no "complaint recorded" SMS
    again = sms(hooks, "STOP", message_sid)  # Twilio's retry: still one item
    assert list(again) == []
    gateway.settle()
    services = gateway.services
    assert count(services, ComplaintRow) == 0
    (item,) = services.store.triage.listing()
    assert item.kind == "opt_out" and item.channel == "sms"
    assert count(services, TriageRow) == 1
    assert count(services, EventRow) == 1
    publish(services)
    assert count(services, AcknowledgementRow) == 0
    (event,) = drain(services.settings, "events")
    assert event["type"] == "ma.cashplus.intake.triage.opt_out.v1"
    assert drain(services.settings, "acks") == []


def test_staff_turns_a_non_complaint_into_a_complaint_dated_from_its_receipt(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    sms(hooks, "chokran bzaf")
    gateway.settle()
    services = gateway.services
    (item,) = services.store.triage.listing()
    assert item.kind == "thanks"
    publish(services)
    drain(services.settings, "events")
    client, csrf = staff_client(gateway)
    page = client.get("/ops/triage/").text
    assert item.reference in page and "chokran bzaf" in page

    answer = client.post(f"/ops/triage/{item.id}/complaint", data={"csrf_token": csrf})
    assert answer.status_code == 303
    notice = client.get(answer.headers["location"]).text
    assert item.reference in notice

    message = services.store.complaints.get_by_reference(item.reference)
    assert message is not None
    expected = compute_deadlines(item.received_at, zone=services.settings.timezone)
    assert message.received_at == item.received_at
    assert message.ack_due_at == expected.ack_due_at
    assert message.answer_due_at == expected.answer_due_at
    assert message.triage is not None
    assert (message.triage.kind, message.triage.method) == ("complaint", "staff")
    assert (message.triage.suggested, message.triage.decided_by) == ("thanks", "karim")
    assert services.store.triage.listing() == []
    (audited,) = [e for e in services.store.staff_audit.latest() if e.action == "triage_complaint"]
    assert audited.actor == "karim" and audited.target == item.id

    publish(services)
    (published,) = drain(services.settings, "inbound")
    assert published["type"] == "ma.cashplus.complaint.received.v1"
    data: Any = published["data"]
    assert data["reference"] == item.reference
    assert data["received_at"] == message.model_dump(mode="json")["received_at"]
    # The acknowledgement worker's copy: acknowledged like any complaint.
    (for_acks,) = drain(services.settings, "acks")
    acked: Any = for_acks["data"]
    assert acked["id"] == message.id
    # Keyed like any complaint; its input logged once as evidence, not twice.
    assert message.customer.key is not None and message.customer.key.startswith("cus_")
    assert count(services, EvidenceRow) == 1
    assert services.store.evidence.verify().whole
    # Twice is the same complaint; the item cannot be "confirmed" back.
    client.post(f"/ops/triage/{item.id}/complaint", data={"csrf_token": csrf})
    assert count(services, ComplaintRow) == 1
    refused = client.post(f"/ops/triage/{item.id}/confirm", data={"csrf_token": csrf})
    assert refused.headers["location"].startswith("/ops/triage/?notice=conflict")


def test_staff_confirms_a_non_complaint_and_who_and_when_are_kept(
    gateway: RunningGateway, hooks: TwilioWebhooks
) -> None:
    sms(hooks, "وقف")
    gateway.settle()
    services = gateway.services
    (item,) = services.store.triage.listing()
    assert item.kind == "opt_out"
    client, csrf = staff_client(gateway)
    without_token = client.post(f"/ops/triage/{item.id}/confirm", data={})
    assert without_token.status_code == 403
    answer = client.post(f"/ops/triage/{item.id}/confirm", data={"csrf_token": csrf})
    assert answer.status_code == 303
    confirmed = services.store.triage.get(item.id)
    assert confirmed is not None
    assert (confirmed.status, confirmed.decided_by) == ("confirmed", "karim")
    assert confirmed.decided_at is not None
    assert count(services, ComplaintRow) == 0
