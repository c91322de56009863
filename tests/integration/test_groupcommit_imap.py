"""IMAP batch capture against a real Dovecot: one group commit per fetched batch, then the MOVE.

The promise: a mail leaves the inbox only after its capture is committed, a
fetched batch in one transaction; the runner makes the complaints afterwards.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.email.imap.poller import poll_once
from channels.email.staged import drain_mail_captures
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store import StoreUnavailable
from gateway.store.tables import ComplaintRow, IntakeRow, QuarantineRow
from tests.peers.complaints import count_rows, failing_inserts_into
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import (
    ARRIVED,
    NOT_A_MAIL,
    capture_count,
    complaint_count,
    complaint_mail,
    imap_settings,
    poll_and_normalize,
)
from tests.peers.processes import IntakeProcess, IntakeProcesses, env_for, wait_until

KILL_ATTEMPTS = 30


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    return dovecot.add_user()


@pytest.fixture
def services(settings: Settings, account: ImapAccount) -> Iterator[Services]:
    built = build_services(imap_settings(settings, account, imap_batch_size=50))
    try:
        yield built
    finally:
        built.close()


def test_a_fetched_batch_is_committed_in_one_transaction_then_moved(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    for number in range(7):
        dovecot.append(account, complaint_mail(number), ARRIVED)

    tally = poll_once(services)

    assert tally.captured == 7
    assert services.store.captures.group.batches == 1
    assert count_rows(services.store, IntakeRow) == 7
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 7
    drain_mail_captures(services)
    assert count_rows(services.store, ComplaintRow) == 7


def test_a_store_failure_in_the_batch_commit_moves_no_mail(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    for number in range(4):
        dovecot.append(account, complaint_mail(number), ARRIVED)

    with failing_inserts_into(services.store.engine, "intake"), pytest.raises(StoreUnavailable):
        poll_once(services)

    assert dovecot.count(account, "INBOX") == 4
    assert count_rows(services.store, IntakeRow) == 0


def test_after_a_failed_batch_the_next_pass_commits_each_mail_once(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    for number in range(4):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    with failing_inserts_into(services.store.engine, "intake"), pytest.raises(StoreUnavailable):
        poll_once(services)

    tally = poll_and_normalize(services)

    assert (tally.captured, tally.repeated) == (4, 0)
    assert count_rows(services.store, IntakeRow) == 4
    assert count_rows(services.store, ComplaintRow) == 4
    assert dovecot.count(account, services.settings.imap_processed_folder) == 4


def test_a_malformed_mail_is_captured_with_its_batch_and_quarantined_by_the_runner(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    dovecot.append(account, complaint_mail(1), ARRIVED)
    dovecot.append(account, NOT_A_MAIL, ARRIVED)
    dovecot.append(account, complaint_mail(2), ARRIVED)

    tally = poll_and_normalize(services)

    assert tally.captured == 3
    assert services.store.captures.group.batches == 1
    assert count_rows(services.store, QuarantineRow) == 1
    assert count_rows(services.store, ComplaintRow) == 2
    assert dovecot.count(account, services.settings.imap_processed_folder) == 3


def frozen_between_commit_and_move(
    poller: IntakeProcess, database: Path, dovecot: DovecotServer, account: ImapAccount
) -> bool:
    """Freeze the poller right after a batch's capture; True if its MOVE was still to come.

    The poller is left stopped (SIGSTOP) when this returns True, running otherwise.
    """
    seen = capture_count(database)
    wait_until(lambda: capture_count(database) > seen, "a batch commit", interval=0.001)
    os.kill(poller.popen.pid, signal.SIGSTOP)
    if capture_count(database) > dovecot.count(account, "Processed"):
        return True
    os.kill(poller.popen.pid, signal.SIGCONT)
    return False


def test_poller_killed_between_a_batch_capture_and_its_move_makes_no_second_capture(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    backlog = 300
    for number in range(backlog):
        dovecot.append(account, complaint_mail(number))
    env = env_for(
        imap_settings(settings, account, imap_batch_size=10), imap_password=account.password
    )
    database = settings.data_dir / "intake.db"
    poller = intake_processes.start("imap", "poll", env=env)

    landed = False
    for _attempt in range(KILL_ATTEMPTS):
        if frozen_between_commit_and_move(poller, database, dovecot, account):
            landed = True
            break
    poller.popen.send_signal(signal.SIGKILL)
    poller.wait()
    assert landed, "no SIGSTOP landed between a commit and its MOVE"
    committed_not_moved = capture_count(database) - dovecot.count(account, "Processed")

    restarted = intake_processes.run("imap", "poll", "--once", env=env)

    assert committed_not_moved > 0
    assert restarted.popen.returncode == 0, restarted.describe()
    assert capture_count(database) == backlog
    assert complaint_count(database) == backlog
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, "Processed") == backlog
