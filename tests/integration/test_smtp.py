"""The SMTP receiver on a real socket, driven by the stdlib ``smtplib`` client.

Each test starts ``channels.email.smtp`` and a normalizer runner in threads of
the test process (the way ``intake run`` does), on a free port, with its own
SQLite store, so a test can break the store in-process and read the capture
right after a reply (the complaint once the runner is done: ``settle``).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.email.smtp import SmtpServer, run_server
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store import StoreUnavailable
from gateway.store.db import reading
from gateway.store.tables import (
    ComplaintRow,
    EventRow,
    EvidenceRow,
    IntakeRow,
    OutboxRow,
    QuarantineRow,
)
from tests.peers.complaints import count_rows
from tests.peers.processes import free_port, wait_until
from tests.peers.runners import running_normalizer, settled

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
RECIPIENTS = "contact@cashplus.ma,réclamations@cashplus.ma,plaintes.cashplus.ma"
SENDER = "amina.bennani@example.ma"


@dataclass
class RunningSmtp:
    port: int
    services: Services
    server: SmtpServer
    stop: threading.Event

    def client(self, timeout: float = 15) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=timeout)

    def rows(self, model: type) -> int:
        return count_rows(self.services.store, model)

    def settle(self) -> None:
        settled(self.services)


@contextmanager
def running_smtp(settings: Settings) -> Iterator[RunningSmtp]:
    services = build_services(settings)
    server = SmtpServer(services)
    stop = threading.Event()
    thread = threading.Thread(target=run_server, args=(server, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.listening or not thread.is_alive(), "the SMTP server")
        assert thread.is_alive(), "the SMTP server thread died at start-up"
        with running_normalizer(services):
            yield RunningSmtp(settings.smtp_port or 0, services, server, stop)
    finally:
        stop.set()
        thread.join(15)
        services.close()


@pytest.fixture
def start_smtp(settings: Settings) -> Iterator[Callable[..., RunningSmtp]]:
    """Start a receiver with these settings changed; stopped at teardown."""
    with ExitStack() as stack:

        def start(**overrides: object) -> RunningSmtp:
            values = {"smtp_port": free_port(), "smtp_recipients": RECIPIENTS, **overrides}
            return stack.enter_context(running_smtp(settings.model_copy(update=values)))

        yield start


@pytest.fixture
def smtp(start_smtp: Callable[..., RunningSmtp]) -> RunningSmtp:
    return start_smtp()


def eml(name: str) -> bytes:
    return (MAIL / name).read_bytes()


def deliver(
    client: smtplib.SMTP,
    data: bytes,
    *,
    sender: str = SENDER,
    to: str = "contact@cashplus.ma",
    options: tuple[str, ...] = (),
) -> tuple[int, str]:
    """EHLO, MAIL, RCPT, DATA; the DATA reply (or the first refusal)."""
    client.ehlo("relay.example.ma")
    for code, text in (client.mail(sender, list(options)), client.rcpt(to)):
        if code >= 300:
            return code, text.decode()
    code, text = client.data(data)
    return code, text.decode()


# -- accepted only after the durable capture ------------------------------------------
def test_250_comes_after_the_capture_is_committed_and_names_its_reference(
    smtp: RunningSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No runner may read it yet: the capture alone must be durable when 250 comes.
    monkeypatch.setattr(smtp.services.store.captures, "claim", lambda *_a, **_k: [])
    with smtp.client() as client:
        code, text = deliver(client, eml("fr_signature_quote.eml"))
        reference = text.rsplit(" ", 1)[-1]
        captured = smtp.services.store.captures.by_reference(reference)
    assert (code, text) == (250, f"2.0.0 Queued as {reference}")
    assert captured is not None and captured.channel == "email"
    # Small enough to ride in the committed row: the bytes are durable with it.
    assert captured.data == eml("fr_signature_quote.eml")
    assert captured.answer_due_at > captured.ack_due_at > captured.received_at
    assert smtp.rows(ComplaintRow) == 0


def test_the_runner_makes_the_complaint_with_the_capture_s_id_reference_and_date(
    smtp: RunningSmtp,
) -> None:
    with smtp.client() as client:
        _code, text = deliver(client, eml("fr_signature_quote.eml"))
    smtp.settle()
    reference = text.rsplit(" ", 1)[-1]
    captured = smtp.services.store.captures.by_reference(reference)
    message = smtp.services.store.complaints.get_by_reference(reference)
    assert captured is not None and message is not None
    assert message.id == captured.id
    assert (message.received_at, message.ack_due_at, message.answer_due_at) == (
        captured.received_at,
        captured.ack_due_at,
        captured.answer_due_at,
    )
    assert smtp.services.store.captures.state_of(captured.id) == ("done", "complaint", message.id)
    # Once done, the capture keeps no envelope: the evidence row has it.
    assert captured.source_ids == {}
    assert smtp.rows(OutboxRow) == 1


def test_envelope_and_receipt_time_are_kept_with_the_evidence(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        code, _text = deliver(client, eml("fr_signature_quote.eml"))
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        evidence = session.scalars(select(EvidenceRow)).one()
        complaint = session.scalars(select(ComplaintRow)).one()
    assert code == 250
    assert evidence.source_ids == {
        "smtp_peer": "127.0.0.1",
        "mail_from": SENDER,
        "rcpt_to": ["contact@cashplus.ma"],
        "message_id": "<fr-1@fixtures.example>",
        "capture_id": complaint.id,
    }
    # Our receipt time, not the 2024 Date header of the fixture.
    assert complaint.received_at.year >= 2025


def test_a_repeated_delivery_is_accepted_without_a_second_complaint(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        first = deliver(client, eml("fr_signature_quote.eml"))
    with smtp.client() as client:
        again = deliver(client, eml("fr_signature_quote.eml"))
    smtp.settle()
    assert first == again
    assert smtp.rows(ComplaintRow) == 1
    assert smtp.rows(OutboxRow) == 1


# -- refused at the edge -------------------------------------------------------------
def test_unknown_recipient_is_refused_with_550(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        code, text = deliver(client, eml("fr_signature_quote.eml"), to="someone@example.com")
    assert (code, text.split(" ", 1)[0]) == (550, "5.1.1")


def test_recipient_domain_accepts_any_address_of_that_domain(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        code, _text = deliver(
            client, eml("fr_signature_quote.eml"), to="Service.Client@PLAINTES.cashplus.ma"
        )
    assert code == 250


def test_size_is_advertised_and_a_declared_oversize_is_refused_with_552(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(email_max_bytes=4096)
    with smtp.client() as client:
        client.ehlo("relay.example.ma")
        advertised = client.esmtp_features.get("size")
        code, _text = client.mail(SENDER, ["SIZE=4097"])
    assert advertised == "4096"
    assert code == 552


def test_more_data_than_the_declared_size_is_refused_with_552_and_not_stored(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(email_max_bytes=4096)
    big = eml("fr_signature_quote.eml") + b"x" * 70 + b"\r\n"
    big += b"".join(b"line %d of padding\r\n" % index for index in range(400))
    with smtp.client() as client:
        code, _text = deliver(client, big, options=("SIZE=100",))
    assert code == 552
    assert smtp.rows(EvidenceRow) == smtp.rows(QuarantineRow) == 0


def test_smtputf8_addresses_are_accepted(smtp: RunningSmtp) -> None:
    sender = "محمد@xn--mgbh0fb.xn--mgbc0a9azcg"
    with smtp.client() as client:
        client.ehlo("relay.example.ma")
        assert client.has_extn("smtputf8")
        refused = client.sendmail(
            sender, ["réclamations@cashplus.ma"], eml("undeclared_smtputf8.eml"), ["SMTPUTF8"]
        )
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        evidence = session.scalars(select(EvidenceRow)).one()
    assert refused == {}
    assert evidence.source_ids["mail_from"] == sender
    assert evidence.source_ids["rcpt_to"] == ["réclamations@cashplus.ma"]
    assert smtp.rows(ComplaintRow) == 1


def test_client_outside_the_allowed_networks_is_refused_with_554_in_the_greeting(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    # S9: refused at connect, so a host that may not deliver holds no session slot.
    smtp = start_smtp(smtp_allowed_networks="10.0.0.0/8, 192.168.0.0/16", smtp_max_connections=2)
    with socket.create_connection(("127.0.0.1", smtp.port), timeout=10) as sock:
        greeting = sock.recv(1024)
        closed = sock.recv(1024)
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtp.client()
    assert greeting.startswith(b"554 ") and b"5.7.1" in greeting
    assert closed == b""  # and the connection is closed by the server
    assert refused.value.smtp_code == 554
    wait_until(lambda: not smtp.server.sessions, "the refused sessions to be released")
    assert smtp.rows(EvidenceRow) == 0


def test_client_inside_the_allowed_networks_may_deliver(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(smtp_allowed_networks="10.0.0.0/8,127.0.0.1/32")
    with smtp.client() as client:
        code, _text = deliver(client, eml("fr_signature_quote.eml"))
    assert code == 250


def test_connection_beyond_the_limit_gets_421_until_one_closes(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(smtp_max_connections=2)
    first, second = smtp.client(), smtp.client()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtp.client()
    first.quit()

    def admitted() -> bool:
        try:
            smtp.client().quit()
        except smtplib.SMTPConnectError:
            return False
        return True

    wait_until(admitted, "a connection slot to be free again", timeout=10)
    second.quit()
    assert refused.value.smtp_code == 421


# -- found by the runner: the sender was told 250, the input kept -------------------
def test_malformed_message_is_accepted_then_kept_in_quarantine_by_the_runner(
    smtp: RunningSmtp,
) -> None:
    raw = b"this is not an e-mail at all\r\n"
    with smtp.client() as client:
        code, text = deliver(client, raw)
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
    assert (code, text.split(" ", 1)[0]) == (250, "2.0.0")
    assert item.reason_code == "malformed"
    assert "does not start with a header field" in item.reason
    assert smtp.services.store.blobs.get(item.stored_at) == raw
    captured = smtp.services.store.captures.by_reference(text.rsplit(" ", 1)[-1])
    assert captured is not None
    assert item.source_ids["capture_id"] == captured.id
    assert item.source_ids["received_at"] == captured.received_at.isoformat()
    assert smtp.services.store.captures.state_of(captured.id) == (
        "quarantined",
        "quarantined",
        None,
    )
    assert smtp.rows(ComplaintRow) == smtp.rows(OutboxRow) == 0


def test_auto_reply_is_accepted_and_stored_as_an_event_not_a_complaint(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        code, text = deliver(client, eml("autoreply_outlook.eml"))
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        outbox = session.scalars(select(OutboxRow)).one()
    assert (code, text.rsplit(" ", 1)[0]) == (250, "2.0.0 Queued as")
    assert smtp.rows(EventRow) == 1
    assert smtp.rows(ComplaintRow) == 0
    assert outbox.routing_key == "event.email.autoreply"


def test_null_reverse_path_makes_a_bounce_event(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        code, _text = deliver(client, eml("fr_signature_quote.eml"), sender="")
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        evidence = session.scalars(select(EvidenceRow)).one()
    assert code == 250
    assert evidence.source_ids["mail_from"] == ""
    assert smtp.rows(EventRow) == 1 and smtp.rows(ComplaintRow) == 0


# -- our fault: 451, nothing recorded, nothing said about us --------------------------
def test_store_unavailable_answers_451_and_records_nothing(
    smtp: RunningSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise StoreUnavailable("OperationalError: disk I/O error in /srv/intake/secret.db")

    monkeypatch.setattr(smtp.services.store.captures, "capture_many", broken)
    with smtp.client() as client:
        code, text = deliver(client, eml("fr_signature_quote.eml"))
    assert (code, text) == (451, "4.3.0 Temporary local problem, please try again later")
    assert smtp.rows(IntakeRow) == smtp.rows(ComplaintRow) == smtp.rows(EvidenceRow) == 0


def test_the_retry_after_a_451_is_accepted_once(
    smtp: RunningSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise StoreUnavailable("OperationalError")

    monkeypatch.setattr(smtp.services.store.captures, "capture_many", broken)
    with smtp.client() as client:
        first, _text = deliver(client, eml("fr_signature_quote.eml"))
    monkeypatch.undo()
    with smtp.client() as client:
        retry, _text = deliver(client, eml("fr_signature_quote.eml"))
    smtp.settle()
    assert (first, retry) == (451, 250)
    assert smtp.rows(ComplaintRow) == smtp.rows(OutboxRow) == 1


def test_an_unexpected_error_answers_451_never_500_with_its_text(
    smtp: RunningSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: object) -> None:
        raise RuntimeError("secret internal detail")

    # In the capture's commit (the writer thread's), where an answer waits for it.
    monkeypatch.setattr(smtp.services.store.captures, "capture_many", crash)
    with smtp.client() as client:
        code, text = deliver(client, eml("fr_signature_quote.eml"))
    assert code == 451
    assert "secret" not in text and "RuntimeError" not in text


# -- concurrency, TLS, shutdown ----------------------------------------------------------
def test_a_slow_commit_does_not_stop_other_sessions(
    smtp: RunningSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    captures = smtp.services.store.captures
    real_capture = captures.capture_many

    def slow(*args: object) -> object:
        release.wait(20)
        return real_capture(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(captures, "capture_many", slow)
    replies: list[tuple[int, str]] = []

    def send() -> None:
        with smtp.client(timeout=30) as client:
            replies.append(deliver(client, eml("fr_signature_quote.eml")))

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: smtp.server.handler.in_flight == 1, "the first DATA to reach the store")
    with smtp.client(timeout=3) as other:
        noop = other.noop()
    release.set()
    sender.join(20)
    assert noop[0] == 250
    assert replies and replies[0][0] == 250


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = [
        *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
        *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-keyout", str(key), "-out", str(cert)),
        *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
    ]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_is_offered_with_a_certificate_and_mail_is_accepted_over_tls(
    start_smtp: Callable[..., RunningSmtp], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    smtp = start_smtp(smtp_tls_cert=str(cert), smtp_tls_key=str(key))
    with smtp.client() as client:
        client.ehlo("relay.example.ma")
        offered = client.has_extn("starttls")
        client.starttls(context=ssl.create_default_context(cafile=str(cert)))
        encrypted = isinstance(client.sock, ssl.SSLSocket)
        code, _text = deliver(client, eml("fr_signature_quote.eml"))
    assert offered and encrypted
    assert code == 250


def test_starttls_is_not_offered_without_a_certificate(smtp: RunningSmtp) -> None:
    with smtp.client() as client:
        client.ehlo("relay.example.ma")
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")


def test_stopping_says_421_to_an_idle_session(smtp: RunningSmtp) -> None:
    with socket.create_connection(("127.0.0.1", smtp.port), timeout=10) as sock:
        greeting = sock.recv(1024)
        smtp.stop.set()
        goodbye = sock.recv(1024)
    assert greeting.startswith(b"220 ")
    assert goodbye.startswith(b"421 ")
