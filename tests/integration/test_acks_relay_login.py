"""The SMTP relay's login and TLS, against a real aiosmtpd server that demands both.

The server offers STARTTLS (or implicit TLS) with a self-signed certificate
made for the test by the ``openssl`` command, refuses mail before TLS and
before AUTH, and records which login each session used. The client trusts
the certificate through ``SSL_CERT_FILE`` (the standard OpenSSL variable),
so the relay's certificate is really verified. A wrong password is our
configuration: retried and logged, never recorded as the customer's refusal.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.lib.services import Services, build_services
from tests.peers.acks import ack_row, mail_complaint
from tests.peers.processes import free_port
from tests.peers.smtp_capture import CaptureHandler

LOGIN, PASSWORD = "acks-intake", "s3cret p@ss/word"
TEXT = "Bonjour, mon transfert de 2000 dirhams vers Fès n'est jamais arrivé."


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass
class SessionSeen:
    login: bytes | None
    tls: bool


@dataclass
class LoginHandler(CaptureHandler):
    """The capture handler, also keeping how each message's session was secured."""

    sessions: list[SessionSeen] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # aiosmtpd sets ``session.ssl`` after STARTTLS only; the transport knows in both cases.
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append(SessionSeen(session.auth_data, tls))
        return await super().handle_DATA(server, session, envelope)


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        LOGIN.encode(),
        PASSWORD.encode(),
    )
    # handled=False: the server answers the refusal itself (535).
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    folder = tmp_path_factory.mktemp("relay-tls")
    made = Certificate(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(made.key), "-out", str(made.cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return made


@contextmanager
def secured_relay(
    certificate: Certificate, *, implicit: bool
) -> Iterator[tuple[LoginHandler, int]]:
    """A relay that demands TLS (STARTTLS, or TLS from the first byte) and AUTH."""
    handler = LoginHandler()
    port = free_port()
    # aiosmtpd only counts STARTTLS as TLS for "AUTH after TLS"; implicit TLS is TLS throughout.
    tls: dict[str, Any] = (
        {"ssl_context": certificate.server_context(), "auth_require_tls": False}
        if implicit
        else {"tls_context": certificate.server_context(), "require_starttls": True}
    )
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        **tls,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def relay_url(port: int, *, password: str = PASSWORD, implicit: bool = False) -> str:
    credentials = f"{quote(LOGIN, safe='')}:{quote(password, safe='')}"
    if implicit:
        return f"smtps://{credentials}@127.0.0.1:{port}"
    return f"smtp://{credentials}@127.0.0.1:{port}?starttls=true"


@contextmanager
def services_with(settings: Settings, url: str) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"smtp_relay_url": SecretStr(url)}))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def trusted(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    return certificate


# For smtps aiosmtpd warns that AUTH does not wait for TLS: the whole session is TLS already.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_the_acknowledgement_goes_over_tls_with_the_relay_login(
    settings: Settings, trusted: Certificate, implicit: bool
) -> None:
    with (
        secured_relay(trusted, implicit=implicit) as (handler, port),
        services_with(settings, relay_url(port, implicit=implicit)) as services,
    ):
        complaint = mail_complaint(services, TEXT)
        row = Acknowledger(services).handle(complaint)

    assert row.status == "sent"
    assert handler.sessions == [SessionSeen(login=LOGIN.encode(), tls=True)]
    [mail] = handler.messages()
    assert mail.rcpt_tos == ["fatima.alaoui@example.ma"]


def test_a_wrong_password_is_retried_and_logged_not_blamed_on_the_customer(
    settings: Settings, trusted: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        secured_relay(trusted, implicit=False) as (handler, port),
        services_with(settings, relay_url(port, password="last-year's")) as services,
        caplog.at_level(logging.ERROR, logger="intake.acks"),
    ):
        complaint = mail_complaint(services, TEXT)
        acknowledger = Acknowledger(services)
        settled = [acknowledger.settle(complaint) for _ in range(2)]
        row = ack_row(services, complaint.id)

    assert settled == [False, False]  # back on the queue each time
    assert row is not None and (row.status, row.reason, row.attempts) == ("sending", None, 2)
    assert [r.getMessage() for r in caplog.records if "relay_login: 535" in r.getMessage()]
    assert len([r for r in caplog.records if "configuration" in r.getMessage()]) == 1
    assert handler.messages() == []


def test_a_relay_certificate_nobody_vouches_for_is_refused(
    settings: Settings, certificate: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        secured_relay(certificate, implicit=False) as (handler, port),
        services_with(settings, relay_url(port)) as services,
        caplog.at_level(logging.ERROR, logger="intake.acks"),
    ):
        complaint = mail_complaint(services, TEXT)
        settled = Acknowledger(services).settle(complaint)

    assert settled is False
    assert any("relay_tls: SSLCertVerificationError" in r.getMessage() for r in caplog.records)
    assert handler.messages() == []
