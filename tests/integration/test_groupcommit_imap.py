"""IMAP batch ingest against a real Dovecot: one group commit per fetched batch, then the MOVE.

The promise is unchanged: a mail leaves the inbox only after its complaint
(or its quarantine entry) is committed; what changes is that a fetched batch
is committed in one transaction instead of one per mail.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.email.imap.poller import poll_once
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store import StoreUnavailable
from gateway.store.tables import ComplaintRow, QuarantineRow
from tests.peers.complaints import count_rows, failing_inserts_into
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import ARRIVED, NOT_A_MAIL, complaint_count, complaint_mail, imap_settings
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

    assert tally.complaints == 7
    assert services.store.complaints.group.batches == 1
    assert count_rows(services.store, ComplaintRow) == 7
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 7


def test_a_store_failure_in_the_batch_commit_moves_no_mail(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    for number in range(4):
        dovecot.append(account, complaint_mail(number), ARRIVED)

    with failing_inserts_into(services.store.engine, "outbox"), pytest.raises(StoreUnavailable):
        poll_once(services)

    assert dovecot.count(account, "INBOX") == 4
    assert count_rows(services.store, ComplaintRow) == 0


def test_after_a_failed_batch_the_next_pass_commits_each_mail_once(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    for number in range(4):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    with failing_inserts_into(services.store.engine, "outbox"), pytest.raises(StoreUnavailable):
        poll_once(services)

    tally = poll_once(services)

    assert (tally.complaints, tally.repeated) == (4, 0)
    assert count_rows(services.store, ComplaintRow) == 4
    assert dovecot.count(account, services.settings.imap_processed_folder) == 4


def test_a_rejected_mail_in_the_batch_is_quarantined_and_the_rest_committed_together(
    services: Services, dovecot: DovecotServer, account: ImapAccount
) -> None:
    dovecot.append(account, complaint_mail(1), ARRIVED)
    dovecot.append(account, NOT_A_MAIL, ARRIVED)
    dovecot.append(account, complaint_mail(2), ARRIVED)

    tally = poll_once(services)

    assert (tally.complaints, tally.quarantined) == (2, 1)
    assert services.store.complaints.group.batches == 1
    assert count_rows(services.store, QuarantineRow) == 1
    assert dovecot.count(account, services.settings.imap_quarantine_folder) == 1
    assert dovecot.count(account, services.settings.imap_processed_folder) == 2


def frozen_between_commit_and_move(
    poller: IntakeProcess, database: Path, dovecot: DovecotServer, account: ImapAccount
) -> bool:
    """Freeze the poller right after a batch commit; True if its MOVE was still to come.

    The poller is left stopped (SIGSTOP) when this returns True, running otherwise.
    """
    seen = complaint_count(database)
    wait_until(lambda: complaint_count(database) > seen, "a batch commit", interval=0.001)
    os.kill(poller.popen.pid, signal.SIGSTOP)
    if complaint_count(database) > dovecot.count(account, "Processed"):
        return True
    os.kill(poller.popen.pid, signal.SIGCONT)
    return False


def test_poller_killed_between_a_batch_commit_and_its_move_makes_no_second_complaint(
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
    committed_not_moved = complaint_count(database) - dovecot.count(account, "Processed")

    restarted = intake_processes.run("imap", "poll", "--once", env=env)

    assert committed_not_moved > 0
    assert restarted.popen.returncode == 0, restarted.describe()
    assert complaint_count(database) == backlog
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, "Processed") == backlog
