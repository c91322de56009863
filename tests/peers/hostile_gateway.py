"""One real ``intake run`` for the hostile-input tests: every channel, one process to watch.

The hostile corpus (``tests.peers.hostile``) is sent through each channel's
real protocol to this subprocess: SMTP (stdlib ``smtplib``), IMAP (mail
appended to the session's Dovecot, fetched by the poller), HTTP (web form,
partner API, letter API, Twilio webhooks signed with twilio's validator).
Being a separate process, its memory can be read from ``/proc``
(``memory_growth_mb``) and its survival checked after each input.

Each test module holds one (a module-scoped fixture around
``running_hostile_gateway``): starting it costs a few seconds, and each test
finds its own traces in the store by a unique marker.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.store.apikeys import SCOPES
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.hostile import peak_rss_mb
from tests.peers.processes import (
    IntakeProcess,
    IntakeProcesses,
    free_port,
    intake_env,
    wait_for_port,
)
from tests.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, MediaServer, TwilioWebhooks

# The hostile inputs go through every route a key may use.
ALL_SCOPES = [arg for scope in SCOPES for arg in ("--scope", scope)]

# What the issue allows a hostile input to cost the process, at its worst.
MEMORY_BOUND_MB = 300.0
SESSION_SECRET = "hostile-session-secret-" + "7" * 20
# Plain http, so the form's cookies (secure under https) travel to 127.0.0.1.
PUBLIC_BASE = "http://intake.cashplus.test"


@dataclass
class HostileGateway:
    process: IntakeProcess
    data_dir: Path
    base_url: str
    smtp_port: int
    api_key: str
    imap: ImapAccount
    dovecot: DovecotServer
    media: MediaServer
    baseline_mb: float

    def http(self, **options: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60, **options)  # type: ignore[arg-type]

    def api(self) -> httpx.Client:
        return self.http(headers={"Authorization": f"Bearer {self.api_key}"})

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=60)

    def twilio(self) -> TwilioWebhooks:
        return TwilioWebhooks(target=self.base_url, public_base=PUBLIC_BASE)

    def memory_growth_mb(self) -> float:
        """How far the process's peak resident memory rose since it was warmed up."""
        return peak_rss_mb(self.process.pid) - self.baseline_mb

    def assert_alive(self) -> None:
        assert self.process.running(), self.process.describe()


def gateway_env(data_dir: Path, http_port: int, smtp_port: int, account: ImapAccount, media: str):
    return intake_env(
        data_dir=data_dir,
        http_port=http_port,
        smtp_port=smtp_port,
        smtp_recipients="contact@cashplus.ma",
        # One sender and one address deliver every hostile mail: no hourly budget here.
        smtp_max_messages_per_sender_per_hour=0,
        smtp_max_messages_per_client_per_hour=0,
        imap_host=account.host,
        imap_port=account.port,
        imap_user=account.user,
        imap_password=account.password,
        imap_tls="off",
        imap_timeout=10,
        imap_poll_interval=1,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=PUBLIC_BASE,
        twilio_api_base_url=media,
        twilio_worker_interval=0.2,
        media_fetch_backoff=0.2,
        message_media_wait=30,
        session_secret=SESSION_SECRET,
        webform_max_per_hour=10_000,
        ocr_timeout=30,
        relay_poll_interval=0.2,
    )


@contextmanager
def running_hostile_gateway(root: Path, dovecot: DovecotServer) -> Iterator[HostileGateway]:
    """``intake run`` with every channel on, warmed up, in ``root``; stopped at the end."""
    data_dir = root / "var"
    account = dovecot.add_user()
    http_port, smtp_port = free_port(), free_port()
    with MediaServer() as media:
        env = gateway_env(data_dir, http_port, smtp_port, account, media.base_url)
        processes = IntakeProcesses(workdir=root, env=env)
        try:
            created = processes.run("api-key", "create", "hostile-tests", *ALL_SCOPES)
            assert created.popen.returncode == 0, created.describe()
            process = processes.start("run")
            wait_for_port(http_port, process)
            wait_for_port(smtp_port, process)
            gateway = HostileGateway(
                process=process,
                data_dir=data_dir,
                base_url=f"http://127.0.0.1:{http_port}",
                smtp_port=smtp_port,
                api_key=created.stdout().strip(),
                imap=account,
                dovecot=dovecot,
                media=media,
                baseline_mb=0.0,
            )
            warm_up(gateway)
            gateway.baseline_mb = peak_rss_mb(process.pid)
            yield gateway
        finally:
            processes.stop_all()


def warm_up(gateway: HostileGateway) -> None:
    """One ordinary complaint through the API, so lazy imports count in the baseline."""
    with gateway.api() as client:
        answer = client.post(
            "/v1/complaints",
            json={
                "body": "Bonjour, ma carte est bloquée depuis hier au guichet de Rabat.",
                "customer": {"phone": "0612345678"},
            },
        )
    assert answer.status_code == 201, answer.text
