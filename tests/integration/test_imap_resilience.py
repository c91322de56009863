"""The IMAP poller when things go wrong: dropped connections, silent networks, store down, kills.

The poller runs as ``intake run`` runs it (a thread with a stop event) or as
the Procfile runs it (``intake imap poll`` in a subprocess). Network faults
come from a TCP proxy in front of Dovecot (``tests.peers.tcpproxy``) or from
Dovecot itself (``doveadm kick``); the store outage from a proxy in front of
the machine's PostgreSQL. Tests wait on conditions with deadlines, never on
fixed sleeps.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator

import pytest

from config.settings import Settings
from gateway.store.tables import ComplaintRow
from tests.peers.complaints import count_rows
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import (
    capture_count,
    complaint_count,
    complaint_mail,
    imap_settings,
    running_poller,
)
from tests.peers.processes import IntakeProcesses, env_for, wait_until
from tests.peers.services import port_open
from tests.peers.tcpproxy import TcpProxy

IMAP_LOG = "intake.imap"


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    return dovecot.add_user()


@pytest.fixture
def imap_proxy(dovecot: DovecotServer) -> Iterator[TcpProxy]:
    """A TCP proxy in front of Dovecot that a test can cut, blackhole and restore."""
    with TcpProxy(("127.0.0.1", dovecot.port)) as proxy:
        yield proxy


def outage_records(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == IMAP_LOG and record.levelno == logging.ERROR and words in record.message
    )


def test_mail_is_picked_up_through_idle_without_waiting_for_a_poll(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    # Polling would take ten minutes: only IDLE can bring the mail in time.
    config = imap_settings(settings, account, imap_poll_interval=600, imap_idle_seconds=600)
    with running_poller(config) as poller:
        wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")
        dovecot.append(account, complaint_mail(1))
        wait_until(lambda: count_rows(poller.services.store, ComplaintRow) == 1, "the complaint")
        wait_until(lambda: dovecot.count(account, "INBOX") == 0, "the mail moved")


def test_stop_event_ends_the_poller_while_it_is_in_idle(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    config = imap_settings(settings, account, imap_idle_seconds=600)
    with running_poller(config) as poller:
        wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")
        poller.stop.set()
        poller.thread.join(5)
        assert not poller.thread.is_alive(), "still in IDLE 5 s after stop was set"


def test_without_idle_and_move_it_polls_and_moves_by_copy_and_expunge(
    settings: Settings,
    dovecot: DovecotServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=IMAP_LOG)
    account = dovecot.add_user(capability="IMAP4rev1")
    dovecot.append(account, complaint_mail(1))
    config = imap_settings(settings, account, imap_poll_interval=0.2)
    with running_poller(config) as poller:
        wait_until(lambda: count_rows(poller.services.store, ComplaintRow) == 1, "the first")
        dovecot.append(account, complaint_mail(2))
        wait_until(lambda: count_rows(poller.services.store, ComplaintRow) == 2, "the second")
        wait_until(lambda: dovecot.count(account, "INBOX") == 0, "both mails moved")
        assert dovecot.count(account, "Processed") == 2
        assert dovecot.idle_sessions(account.user) == 0
    assert "neither MOVE nor UIDPLUS" in caplog.text


def test_kicked_during_idle_it_reconnects_and_ingests_what_arrived(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    with running_poller(imap_settings(settings, account)) as poller:
        wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")
        dovecot.kick(account.user)
        dovecot.append(account, complaint_mail(2))
        wait_until(lambda: count_rows(poller.services.store, ComplaintRow) == 1, "the complaint")
        wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE again")


def test_mail_that_arrived_while_the_network_was_down_is_ingested_after_it(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    imap_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=IMAP_LOG)
    config = imap_settings(settings, account, imap_port=imap_proxy.port)
    with running_poller(config) as poller:
        wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")
        imap_proxy.refuse()
        # Delivered straight to Dovecot: the poller cannot hear of it.
        dovecot.append(account, complaint_mail(3))
        wait_until(lambda: outage_records(caplog, "unreachable") == 1, "the outage noticed")
        assert count_rows(poller.services.store, ComplaintRow) == 0
        # The proxy's accept thread lets go of the port within a tick.
        wait_until(lambda: not port_open("127.0.0.1", imap_proxy.port, 0.2), "the port closed")
        imap_proxy.restore()
        wait_until(lambda: count_rows(poller.services.store, ComplaintRow) == 1, "the complaint")
    assert outage_records(caplog, "unreachable") == 1, "the outage is logged once"


def test_a_silent_network_during_idle_is_detected_by_the_timeouts(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    imap_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=IMAP_LOG)
    config = imap_settings(
        settings, account, imap_port=imap_proxy.port, imap_idle_seconds=2, imap_timeout=2
    )
    with running_poller(config) as poller:
        wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")
        # Packets vanish, nothing is reset: only a read timeout can tell.
        imap_proxy.blackhole()
        dovecot.append(account, complaint_mail(4))
        wait_until(lambda: outage_records(caplog, "unreachable") == 1, "a timeout")
        imap_proxy.restore()
        wait_until(lambda: count_rows(poller.services.store, ComplaintRow) == 1, "the complaint")


def test_store_outage_leaves_the_mail_in_the_inbox_until_the_store_is_back(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=IMAP_LOG)
    with TcpProxy(("127.0.0.1", 5432)) as database:
        url = postgres_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{database.port}/")
        config = imap_settings(settings, account, database_url=url)
        with running_poller(config) as poller:
            wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")
            database.refuse()
            dovecot.append(account, complaint_mail(5))
            wait_until(lambda: outage_records(caplog, "store") == 1, "the store failure")
            assert dovecot.count(account, "INBOX") == 1, "nothing acknowledged"
            wait_until(lambda: not port_open("127.0.0.1", database.port, 0.2), "the port closed")
            database.restore()
            wait_until(lambda: dovecot.count(account, "INBOX") == 0, "the mail moved")
            wait_until(
                lambda: count_rows(poller.services.store, ComplaintRow) == 1, "the complaint"
            )


def test_poller_killed_mid_backlog_leaves_one_complaint_per_mail_after_restart(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    backlog = 300
    for number in range(backlog):
        dovecot.append(account, complaint_mail(number))
    config = imap_settings(settings, account, imap_batch_size=10)
    env = env_for(config, imap_password=account.password)
    database = settings.data_dir / "intake.db"

    poller = intake_processes.start("imap", "poll", env=env)
    # Killed at some point of the backlog: batches are captured whole and
    # moved afterwards, so the kill may fall between a capture and its MOVE
    # (test_imap_poller.py::test_mail_captured_but_not_moved_... makes that case certain).
    # The poller alone normalizes nothing; ``--once`` below runs the runner.
    wait_until(
        lambda: capture_count(database) >= 20,
        "the poller part-way through the backlog",
        timeout=60,
        interval=0.002,
    )
    poller.popen.send_signal(signal.SIGKILL)
    poller.wait()
    assert dovecot.count(account, "INBOX") > 0, "killed too late to prove anything"

    restarted = intake_processes.run("imap", "poll", "--once", env=env)

    assert restarted.popen.returncode == 0, restarted.describe()
    assert capture_count(database) == backlog
    assert complaint_count(database) == backlog
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, "Processed") == backlog


def test_sigterm_stops_intake_imap_poll_cleanly(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    env = env_for(imap_settings(settings, account), imap_password=account.password)
    poller = intake_processes.start("imap", "poll", env=env)
    wait_until(lambda: dovecot.idle_sessions(account.user) == 1, "the poller in IDLE")

    poller.signal(signal.SIGTERM)

    assert poller.wait(10) == 0, poller.describe()
    assert "IMAP poller stopped" in poller.stderr()
