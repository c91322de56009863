"""Reaching the mailbox: TLS modes, XOAUTH2, and what ``intake`` says when it cannot.

Dovecot (``tests.peers.dovecot``) offers implicit TLS and STARTTLS with a
self-signed certificate (trusted through ``SSL_CERT_FILE``, as an operator
would add a private CA), and checks XOAUTH2 bearer tokens against a local
introspection endpoint standing in for Microsoft's or Google's.
"""

from __future__ import annotations

import shlex
import ssl
import sys

import pytest

from channels.email.imap.poller import poll_once
from config.settings import Settings
from gateway.lib.services import build_services
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import complaint_count, complaint_mail, imap_settings
from tests.peers.processes import IntakeProcesses, env_for, free_port, wait_until


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    account = dovecot.add_user()
    dovecot.append(account, complaint_mail(1))
    return account


def printing(token: str) -> str:
    """A token command, as an operator would configure one."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(f'print({token!r})')}"


def poll(settings: Settings) -> int:
    services = build_services(settings)
    try:
        return poll_once(services).captured
    finally:
        services.close()


def test_xoauth2_logs_in_with_the_token_the_command_prints(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    token = dovecot.issue_token(account.user)
    config = imap_settings(
        settings, account, imap_auth="xoauth2", imap_oauth_token_command=printing(token)
    )

    assert poll(config) == 1


def test_implicit_tls_trusts_a_certificate_from_ssl_cert_file(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.ca_file))
    config = imap_settings(settings, account, imap_tls="on", imap_port=dovecot.tls_port)

    assert poll(config) == 1


def test_implicit_tls_refuses_a_certificate_it_cannot_verify(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    config = imap_settings(settings, account, imap_tls="on", imap_port=dovecot.tls_port)

    with pytest.raises(ssl.SSLCertVerificationError):
        poll(config)


def test_starttls_upgrades_the_plain_port_before_the_login(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.ca_file))
    config = imap_settings(settings, account, imap_tls="starttls")

    assert poll(config) == 1
    assert f"user=<{account.user}>, method=PLAIN" in dovecot.log()
    assert "TLS, session=" in dovecot.log()


def test_refused_token_exits_78_without_showing_the_token(
    settings: Settings,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    config = imap_settings(
        settings, account, imap_auth="xoauth2", imap_oauth_token_command=printing("forged-tok")
    )

    done = intake_processes.run("imap", "poll", "--once", env=env_for(config))

    assert done.popen.returncode == 78, done.describe()
    assert "refused the xoauth2 login" in done.stderr()
    assert "forged-tok" not in done.stderr()


def test_wrong_password_exits_78(
    settings: Settings,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    env = env_for(imap_settings(settings, account), imap_password="not-the-password")

    done = intake_processes.run("imap", "poll", "--once", env=env)

    assert done.popen.returncode == 78, done.describe()
    assert "not-the-password" not in done.stderr()


def test_unreachable_server_exits_69(
    settings: Settings,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    env = env_for(imap_settings(settings, account, imap_port=free_port()))

    done = intake_processes.run("imap", "poll", "--once", env=env)

    assert done.popen.returncode == 69, done.describe()
    assert "ConnectionRefusedError" in done.stderr()


def test_intake_run_starts_the_poller_when_the_imap_host_is_set(
    settings: Settings,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    env = env_for(
        imap_settings(settings, account), imap_password=account.password, http_port=free_port()
    )

    gateway = intake_processes.start("run", env=env)

    database = settings.data_dir / "intake.db"
    wait_until(lambda: complaint_count(database) == 1 or not gateway.running(), "the complaint")
    assert gateway.running(), gateway.describe()
    assert complaint_count(database) == 1


def test_backfill_of_a_folder_that_does_not_exist_exits_64(
    settings: Settings,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    env = env_for(imap_settings(settings, account), imap_password=account.password)

    done = intake_processes.run(
        "imap", "backfill", "--since", "2025-01-01", "--folder", "Archives", env=env
    )

    assert done.popen.returncode == 64, done.describe()
    assert "no folder 'Archives'" in done.stderr()
