"""The IMAP backfill against a real Dovecot: it captures as the poller does, then normalizes.

Each test makes its own Dovecot user and its own SQLite store, and runs the
backfill in process on a read-only (EXAMINE) selection of a folder, as
``intake imap backfill`` does; ``test_imap_poller`` runs the command itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from channels.email.imap.backfill import backfill, open_folder
from channels.email.imap.connection import close_quietly, open_session
from channels.email.imap.outcomes import Tally
from channels.email.imap.poller import poll_once
from channels.email.intake import MailArrival, MailOutcome, ingest_mail
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, EvidenceRow, IntakeRow, OutboxRow
from tests.peers.complaints import count_rows
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import ARRIVED, complaint_mail, complaints, imap_settings

PROCESSED = "Processed"
RECENT = b"\\Recent"


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    return dovecot.add_user()


@pytest.fixture
def services(settings: Settings, account: ImapAccount) -> Iterator[Services]:
    built = build_services(
        imap_settings(settings, account, imap_batch_size=2, imap_processed_folder=PROCESSED)
    )
    try:
        yield built
    finally:
        built.close()


def run_backfill(services: Services, folder: str = "INBOX") -> Tally:
    """The backfill of every mail of ``folder`` since the day before ``ARRIVED``."""
    client = open_session(services.settings)
    try:
        mailbox = open_folder(client, folder)
        uids = mailbox.uids_between(date(2025, 3, 1))
        return backfill(services, mailbox, uids)
    finally:
        close_quietly(client)


def flags(account: ImapAccount, dovecot: DovecotServer, folder: str) -> list[tuple[bytes, ...]]:
    client: IMAPClient = dovecot.client(account)
    try:
        client.select_folder(folder, readonly=True)
        found = client.get_flags(client.search("ALL"))
        # \Recent belongs to the session that sees the mail first, not to the mail.
        return [tuple(flag for flag in found[uid] if flag != RECENT) for uid in sorted(found)]
    finally:
        client.logout()


def evidence_folders(services: Services) -> set[str]:
    with reading(services.store.engine) as session:
        return {ids.get("imap_folder") for ids in session.scalars(select(EvidenceRow.source_ids))}


def capture_outcomes(services: Services) -> list[str | None]:
    with reading(services.store.engine) as session:
        return list(session.scalars(select(IntakeRow.outcome).order_by(IntakeRow.received_at)))


def test_backfill_receives_each_mail_at_its_internaldate_with_the_poller_s_source_ids(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(3):
        dovecot.append(account, complaint_mail(number), ARRIVED + timedelta(hours=number))
    uidvalidity = dovecot.uidvalidity(account)

    tally = run_backfill(services)

    assert (tally.captured, tally.repeated, tally.complaints, tally.known) == (3, 0, 3, 0)
    found = complaints(services)
    assert [item.received_at for item in found] == [
        ARRIVED + timedelta(hours=number) for number in range(3)
    ]
    assert [(item.evidence.imap_uid, item.evidence.imap_uidvalidity) for item in found] == [
        (uid, uidvalidity) for uid in (1, 2, 3)
    ]
    assert evidence_folders(services) == {"INBOX"}
    # Captured as the poller captures: the complaint is its capture (id, reference).
    for item in found:
        capture = services.store.captures.by_reference(item.reference)
        assert capture is not None
        assert (capture.id, capture.received_at) == (item.id, item.received_at)
    assert capture_outcomes(services) == ["complaint"] * 3
    assert count_rows(services.store, OutboxRow) == 3


def test_backfill_moves_and_flags_nothing(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(3):
        dovecot.append(account, complaint_mail(number), ARRIVED)

    run_backfill(services)

    assert dovecot.count(account, "INBOX") == 3
    assert dovecot.count(account, PROCESSED) == 0
    assert flags(account, dovecot, "INBOX") == [(), (), ()]


def test_backfill_of_mail_the_poller_captured_but_no_runner_normalized_is_one_complaint(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(2):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    # The poller captured and moved them; no runner has made them complaints yet.
    assert poll_once(services).captured == 2
    poller_references = set(_capture_references(services))
    assert complaints(services) == []

    tally = run_backfill(services, PROCESSED)

    assert (tally.captured, tally.repeated, tally.complaints) == (2, 2, 2)
    found = complaints(services)
    # The references the poller's captures gave are the complaints'.
    assert {item.reference for item in found} == poller_references
    assert count_rows(services.store, IntakeRow) == 2
    assert capture_outcomes(services) == ["complaint"] * 2
    assert services.store.captures.backlog() == []
    # The evidence is the poller's (the inbox the mail came to), not the backfill's folder.
    assert evidence_folders(services) == {"INBOX"}


def test_backfill_twice_creates_nothing_new(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(3):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    run_backfill(services)
    first = sorted(item.reference for item in complaints(services))

    again = run_backfill(services)

    assert (again.captured, again.repeated, again.complaints, again.known) == (3, 3, 3, 3)
    assert "3 complaint(s) (3 already recorded)" in again.describe()
    assert sorted(item.reference for item in complaints(services)) == first
    assert count_rows(services.store, IntakeRow) == 3
    assert count_rows(services.store, ComplaintRow) == 3
    assert count_rows(services.store, OutboxRow) == 3


def test_backfill_of_a_complaint_recorded_before_staging_creates_nothing_new(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    # Recorded the old way (``ingest_mail``: the complaint's dedup key, no capture).
    raw = complaint_mail(7)
    dovecot.append(account, raw, ARRIVED)
    first = ingest_mail(services, MailArrival(raw=raw, received_at=ARRIVED))
    assert (first.outcome, first.created) == (MailOutcome.COMPLAINT, True)

    tally = run_backfill(services)

    assert (tally.captured, tally.repeated, tally.complaints, tally.known) == (1, 0, 1, 1)
    assert [item.reference for item in complaints(services)] == [first.reference]
    assert count_rows(services.store, ComplaintRow) == 1
    assert count_rows(services.store, OutboxRow) == 1
    # The capture is new (its key is the bytes' hash); the runner found the complaint.
    assert capture_outcomes(services) == ["repeat"]

    run_backfill(services)

    assert count_rows(services.store, ComplaintRow) == 1
    assert count_rows(services.store, IntakeRow) == 1


def _capture_references(services: Services) -> list[str]:
    with reading(services.store.engine) as session:
        return list(session.scalars(select(IntakeRow.reference)))
