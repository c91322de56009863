"""Secrets and personal data never reach the logs or an error page.

One ``intake run`` (every channel on, logging at DEBUG so that libraries
speak too) is given known secrets: an API key, the Twilio auth token, an
IMAP password (wrong, so the poller logs its failures), an SMTP relay URL
with a password (to a closed port, so every acknowledgement fails and is
logged), a session secret. A full flow then goes through the partner API,
SMTP, the web form and Twilio SMS, with phone numbers, e-mail addresses,
card numbers and Moroccan ID-card (CIN) numbers in what customers write,
plus the usual refusals (wrong key, forged signature, invalid input). Then
everything the process wrote, and every answer it gave, is searched.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.services import build_services
from tests.peers.dovecot import DovecotServer
from tests.peers.processes import IntakeProcesses, free_port, intake_env, wait_for_port, wait_until
from tests.peers.twilio import ACCOUNT_SID, LINE_NUMBER, TwilioWebhooks, sid
from tests.peers.webform import REFERENCE, fresh_form, valid_fields

PUBLIC_BASE = "http://intake.cashplus.test"
SECRETS = {
    "twilio_auth_token": "twilio-token-Zq8sW2pL0xK4",
    "imap_password": "imap-pass-Hv7tR3mN9cB1",
    "smtp_relay_password": "relay-pass-Ux5kJ8qE2wA6",
    "session_secret": "session-secret-Gy4nB7vC1zQ9",
}
# What customers write: each value, and the digits a careless mask would leave whole.
PERSONAL = {
    "mobile": "0661234567",
    "mobile-international": "+212 6 61 23 45 67",
    "landline": "05 22 98 76 54",
    "email": "fatima.alaoui@example.ma",
    "card": "4111 1111 1111 1111",
    "card-dashed": "5500-0000-0000-0004",
    "cin": "BE123456",
    "cin-one-letter": "J987654",
}
SEARCHED_DIGITS = {
    "mobile": "61234567",
    "mobile-international": "61 23 45 67",
    "landline": "98 76 54",
    "card": "4111 1111 1111",
    "card-dashed": "5500-0000-0000",
    "cin": "123456",
    "cin-one-letter": "987654",
}
TEXT = (
    "Bonjour, ma carte {card} (et l'autre {card-dashed}) est bloquée. Ma CIN est {cin}, "
    "celle de mon mari {cin-one-letter}. Appelez-moi au {mobile} ou au {mobile-international}, "
    "au bureau {landline}, ou écrivez à {email}."
).format_map(PERSONAL)


@dataclass
class FlowOutput:
    logs: str
    answers: list[str] = field(default_factory=list)
    api_key: str = ""


def run_env(data_dir, http_port: int, smtp_port: int, dovecot: DovecotServer) -> dict[str, str]:  # type: ignore[no-untyped-def]
    account = dovecot.add_user()
    relay = f"smtp://acks:{SECRETS['smtp_relay_password']}@127.0.0.1:{free_port()}"
    return intake_env(
        data_dir=data_dir,
        log_level="DEBUG",
        http_port=http_port,
        smtp_port=smtp_port,
        imap_host=account.host,
        imap_port=account.port,
        imap_user=account.user,
        imap_password=SECRETS["imap_password"],
        imap_tls="off",
        imap_poll_interval=1,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=SECRETS["twilio_auth_token"],
        public_base_url=PUBLIC_BASE,
        session_secret=SECRETS["session_secret"],
        smtp_relay_url=relay,
        webform_max_per_hour=1000,
        relay_poll_interval=0.2,
    )


def api_flow(base: str, key: str, out: FlowOutput) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        auth = {"Authorization": f"Bearer {key}"}
        complaint = {
            "body": TEXT,
            "customer": {"email": PERSONAL["email"], "phone": PERSONAL["mobile"]},
        }
        created = client.post("/v1/complaints", json=complaint, headers=auth)
        assert created.status_code == 201, created.text
        answers = [
            client.post(
                "/v1/complaints", json=complaint, headers={"Authorization": "Bearer " + key[::-1]}
            ),
            client.post("/v1/complaints", content=TEXT.encode(), headers=auth),
            client.post(
                "/v1/complaints", json={"body": TEXT, "customer": {"phone": "12"}}, headers=auth
            ),
            client.get("/v1/complaints/CP-2222-2222", headers=auth),
            client.get("/readyz"),
            client.get("/metrics"),
        ]
    out.answers += [answer.text for answer in answers]


def smtp_flow(port: int) -> None:
    mail = (
        f"From: Fatima <{PERSONAL['email']}>\r\nTo: contact@cashplus.ma\r\n"
        f"Subject: Carte {PERSONAL['card']} bloquée, CIN {PERSONAL['cin']}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + TEXT + "\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        refused = client.sendmail(PERSONAL["email"], ["contact@cashplus.ma"], mail)
    assert refused == {}


def form_flow(base: str, out: FlowOutput) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        token = fresh_form(client)
        fields = valid_fields(token, text=TEXT, email=PERSONAL["email"], phone=PERSONAL["mobile"])
        sent = client.post("/fr/", data=fields)
        assert sent.status_code == 200 and REFERENCE.search(sent.text), sent.text[-300:]
        refused = client.post("/fr/", data={**fields, "phone": "0", "csrf_token": token})
        out.answers.append(refused.text)


def twilio_flow(base: str, out: FlowOutput) -> None:
    hooks = TwilioWebhooks(target=base, public_base=PUBLIC_BASE, token=SECRETS["twilio_auth_token"])
    params = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid("SM"),
        "From": "+212661234567",
        "To": LINE_NUMBER,
        "Body": TEXT,
        "NumMedia": "0",
    }
    signed = hooks.post("/twilio/messaging", params)
    forged = hooks.post("/twilio/messaging", params, signature="Zm9yZ2Vk")
    hooks.close()
    assert signed.status_code == 200, signed.text
    out.answers += [signed.text, forged.text]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory, dovecot: DovecotServer) -> Iterator[FlowOutput]:
    root = tmp_path_factory.mktemp("secrets")
    http_port, smtp_port = free_port(), free_port()
    env = run_env(root / "var", http_port, smtp_port, dovecot)
    processes = IntakeProcesses(workdir=root, env=env)
    try:
        key = processes.run("api-key", "create", "crm").stdout().strip()
        service = processes.start("run")
        wait_for_port(http_port, service)
        base = f"http://127.0.0.1:{http_port}"
        out = FlowOutput(logs="", api_key=key)
        api_flow(base, key, out)
        smtp_flow(smtp_port)
        form_flow(base, out)
        twilio_flow(base, out)
        # The acknowledgements go out (and fail on the closed relay); the poller fails its login.
        wait_until(
            lambda: service.stderr().count("acknowledgement of") >= 2,
            "acks to be tried",
            timeout=60,
        )
        wait_until(
            lambda: "IMAP" in service.stderr() and "login" in service.stderr().lower(),
            "an IMAP failure",
            timeout=60,
        )
    finally:
        processes.stop_all()
    out.logs = "\n".join(process.stderr() + process.stdout() for process in processes.started[1:])
    yield out


def test_the_flow_produced_logs_worth_searching(flow: FlowOutput) -> None:
    assert len(flow.logs.splitlines()) > 50
    assert "DEBUG" in flow.logs
    assert len(flow.answers) >= 8


@pytest.mark.parametrize("name", SECRETS)
def test_secret_never_appears_in_the_logs(flow: FlowOutput, name: str) -> None:
    assert SECRETS[name] not in flow.logs


def test_api_key_never_appears_in_the_logs(flow: FlowOutput) -> None:
    assert flow.api_key and flow.api_key not in flow.logs
    assert flow.api_key[::-1] not in flow.logs


@pytest.mark.parametrize("name", [*SECRETS, "api_key"])
def test_secret_never_appears_in_an_answer(flow: FlowOutput, name: str) -> None:
    secret = flow.api_key if name == "api_key" else SECRETS[name]
    assert not [answer for answer in flow.answers if secret in answer]


@pytest.mark.parametrize("name", PERSONAL)
def test_personal_data_never_appears_in_the_logs(flow: FlowOutput, name: str) -> None:
    assert PERSONAL[name] not in flow.logs
    digits = SEARCHED_DIGITS.get(name)
    if digits:
        assert digits not in flow.logs, f"{name}: {digits!r} left unmasked"


def test_readiness_names_the_broker_without_its_password(settings: Settings) -> None:
    url = f"amqp://intake:broker-pass-Lm3@127.0.0.1:{free_port()}/cashplus"
    services = build_services(settings.model_copy(update={"broker_url": url}))
    try:
        with TestClient(create_app(services)) as client:
            answer = client.get("/readyz")
    finally:
        services.close()
    assert answer.status_code == 503
    assert "broker-pass-Lm3" not in answer.text
    assert "127.0.0.1" in answer.text


def test_an_unexpected_error_page_says_nothing_of_the_internals(settings: Settings) -> None:
    services = build_services(settings.model_copy(update={"smtp_relay_url": SecretStr("x")}))
    key = services.store.api_keys.create("crm")

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"boom at /srv/intake/{SECRETS['session_secret']}")

    # The edge's one write: the capture of the body.
    services.store.captures.capture_many = explode  # type: ignore[method-assign,assignment]
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            answer = client.post(
                "/v1/complaints",
                json={"body": "x", "customer": {"phone": "0612345678"}},
                headers={"Authorization": f"Bearer {key}"},
            )
    finally:
        services.close()
    assert answer.status_code == 503
    assert not re.search(r"boom|/srv/|RuntimeError|Traceback|session-secret", answer.text)
