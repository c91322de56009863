"""The IMAP poller against a real Dovecot: what it captures, where mail goes, the checkpoint.

The poller captures; the complaints are the runner's (``poll_and_normalize``
runs one after the poll, as ``intake imap poll --once`` does).

Each test makes its own Dovecot user (one server for the session) and its own
SQLite store. Messages are appended with an INTERNALDATE in the past, the
way a server records mail that arrived while we were not looking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from channels.email.imap.connection import mailbox_name
from channels.email.imap.poller import poll_once
from channels.email.intake import MailArrival, ingest_mail
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store.checkpoints import ImapCheckpoints
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, EventRow, OutboxRow, QuarantineRow
from router.consumer import consume_messages
from router.relay import build_relay
from tests.peers.complaints import count_rows
from tests.peers.dovecot import DovecotServer, ImapAccount
from tests.peers.imap import (
    ARRIVED,
    NOT_A_MAIL,
    complaint_mail,
    complaints,
    imap_settings,
    poll_and_normalize,
)
from tests.peers.processes import IntakeProcesses, env_for, free_port


@pytest.fixture
def account(dovecot: DovecotServer) -> ImapAccount:
    return dovecot.add_user()


@pytest.fixture
def services(settings: Settings, account: ImapAccount) -> Iterator[Services]:
    built = build_services(imap_settings(settings, account, imap_batch_size=2))
    try:
        yield built
    finally:
        built.close()


def test_each_mail_becomes_one_complaint_received_at_its_internaldate(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(3):
        dovecot.append(account, complaint_mail(number), ARRIVED + timedelta(hours=number))

    tally = poll_and_normalize(services)

    assert (tally.captured, tally.repeated) == (3, 0)
    found = complaints(services)
    assert [item.received_at for item in found] == [
        ARRIVED + timedelta(hours=number) for number in range(3)
    ]
    assert {item.evidence.imap_uid for item in found} == {1, 2, 3}
    assert count_rows(services.store, OutboxRow) == 3


def test_captured_mail_leaves_the_inbox_for_the_processed_folder(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(5):
        dovecot.append(account, complaint_mail(number), ARRIVED)

    poll_once(services)

    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 5


def test_checkpoint_records_uidvalidity_and_last_uid(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    for number in range(3):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    uidvalidity = dovecot.uidvalidity(account)
    poll_once(services)

    checkpoint = ImapCheckpoints(services.store.engine).get(mailbox_name(services.settings).key)
    assert checkpoint is not None
    assert (checkpoint.uidvalidity, checkpoint.last_uid) == (uidvalidity, 3)


def test_malformed_mail_is_captured_moved_like_the_others_and_quarantined_by_the_runner(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    dovecot.append(account, complaint_mail(1), ARRIVED)
    dovecot.append(account, NOT_A_MAIL, ARRIVED)
    dovecot.append(account, complaint_mail(2), ARRIVED)

    tally = poll_once(services)

    # The poller parses nothing: every captured mail goes to the processed folder.
    assert (tally.captured, tally.failed) == (3, 0)
    assert dovecot.count(account, services.settings.imap_processed_folder) == 3
    assert dovecot.count(account, "INBOX") == 0
    assert count_rows(services.store, QuarantineRow) == 0
    poll_and_normalize(services)
    assert len(complaints(services)) == 2
    with reading(services.store.engine) as session:
        quarantined = session.scalars(select(QuarantineRow)).one()
    assert quarantined.reason_code == "malformed"
    assert quarantined.source_ids["imap_uid"] == 2
    assert services.store.captures.get(quarantined.source_ids["capture_id"]) is not None
    # Its INTERNALDATE is kept: a replay is dated from its arrival, not the quarantine.
    assert datetime.fromisoformat(quarantined.source_ids["received_at"]) == ARRIVED


def test_auto_reply_is_stored_as_an_event_and_moved_to_processed(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    dovecot.append(account, complaint_mail(1, auto_reply=True), ARRIVED)

    tally = poll_and_normalize(services)

    assert tally.captured == 1
    assert count_rows(services.store, EventRow) == 1
    assert count_rows(services.store, ComplaintRow) == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 1


def test_mail_arriving_during_a_sync_is_taken_by_that_sync(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server announces it in its answer to one of the sync's own commands;
    # IDLE will not announce it again, so the sync must not leave it behind.
    import channels.email.imap.capture as capture_module

    capture = capture_module.mail_capture
    late: list[int] = []

    def capture_and_receive_more(*args: object, **kwargs: object) -> object:
        if len(late) < 3:
            late.append(1)
            dovecot.append(account, complaint_mail(100 + len(late)), ARRIVED)
        return capture(*args, **kwargs)  # type: ignore[arg-type]

    dovecot.append(account, complaint_mail(1), ARRIVED)
    monkeypatch.setattr(capture_module, "mail_capture", capture_and_receive_more)

    tally = poll_and_normalize(services)

    assert tally.captured == 4
    assert len(complaints(services)) == 4
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 4


def test_mail_captured_but_not_moved_is_moved_without_a_second_capture(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a crash between the capture's commit and the MOVE leaves behind:
    # the capture is in the store, the mail is still in the inbox.
    from channels.email.imap.mailbox import Mailbox

    dovecot.append(account, complaint_mail(8), ARRIVED)

    def lost(*_args: object) -> None:
        raise ConnectionResetError("the connection dropped before the MOVE")

    with monkeypatch.context() as patch:
        patch.setattr(Mailbox, "move", lost)
        with pytest.raises(ConnectionResetError):
            poll_once(services)
    assert [stage.pending for stage in services.store.captures.backlog()] == [1]
    assert dovecot.count(account, "INBOX") == 1

    tally = poll_and_normalize(services)

    assert (tally.captured, tally.repeated) == (1, 1)
    assert len(complaints(services)) == 1
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 1


def test_mail_recorded_before_it_was_fetched_is_moved_without_a_second_complaint(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    # The complaint is in the store already (recorded before captures, or
    # imported): the capture is new, the runner finds the complaint.
    raw = complaint_mail(7)
    dovecot.append(account, raw, ARRIVED)
    first = ingest_mail(services, MailArrival(raw=raw, received_at=ARRIVED))
    assert first.created

    tally = poll_and_normalize(services)

    assert (tally.captured, tally.repeated) == (1, 0)
    assert [item.reference for item in complaints(services)] == [first.reference]
    assert dovecot.count(account, "INBOX") == 0
    assert dovecot.count(account, services.settings.imap_processed_folder) == 1


def test_uidvalidity_change_with_the_same_mails_makes_no_duplicate(
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    mails = [complaint_mail(number) for number in range(3)]
    for raw in mails:
        dovecot.append(account, raw, ARRIVED)
    poll_and_normalize(services)
    # The server renumbers the inbox and the same mails show up again in it
    # (a restored backup, a migrated mailbox).
    renumbered = dovecot.renumber(account)
    for raw in mails:
        dovecot.append(account, raw, ARRIVED)

    tally = poll_and_normalize(services)

    # The same bytes: the first captures' references, no new complaint.
    assert (tally.captured, tally.repeated) == (3, 3)
    assert count_rows(services.store, ComplaintRow) == 3
    assert count_rows(services.store, OutboxRow) == 3
    checkpoint = ImapCheckpoints(services.store.engine).get(mailbox_name(services.settings).key)
    assert checkpoint is not None and checkpoint.uidvalidity == renumbered
    assert dovecot.count(account, "INBOX") == 0


def test_complaints_reach_rabbitmq_with_their_imap_evidence(
    amqp_settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    services = build_services(imap_settings(amqp_settings, account))
    try:
        for number in range(3):
            dovecot.append(account, complaint_mail(number), ARRIVED)
        poll_and_normalize(services)
        relay = build_relay(services.settings, services.store)
        try:
            assert relay.publish_pending().complete
        finally:
            relay.close()
    finally:
        services.close()

    bodies: list[str] = []
    consume_messages(amqp_settings, bodies.append, count=3, timeout=10)

    events = [json.loads(body)["data"] for body in bodies]
    assert sorted(event["evidence"]["imap_uid"] for event in events) == [1, 2, 3]
    assert {event["received_at"] for event in events} == {
        ARRIVED.astimezone(UTC).isoformat().replace("+00:00", "Z")
    }


@pytest.mark.parametrize("publish", [True, False])
def test_poll_once_command_normalizes_and_publishes_what_it_captured_unless_told_not_to(
    amqp_settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
    publish: bool,
) -> None:
    for number in range(3):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    flag = "--publish" if publish else "--no-publish"

    done = intake_processes.run(
        "imap", "poll", "--once", flag, env=env_for(imap_settings(amqp_settings, account))
    )

    assert done.popen.returncode == 0, done.describe()
    assert dovecot.count(account, "INBOX") == 0
    bodies: list[str] = []
    consume_messages(amqp_settings, bodies.append, count=3, timeout=3)
    if publish:
        assert "published 3 message(s)" in done.stderr()
        assert len(bodies) == 3
    else:
        assert "published" not in done.stderr()
        assert bodies == []


def test_poll_once_with_the_broker_away_exits_69_and_keeps_the_complaints_in_the_outbox(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    dovecot.append(account, complaint_mail(1), ARRIVED)
    config = imap_settings(settings, account).model_copy(
        update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}//"}
    )

    done = intake_processes.run("imap", "poll", "--once", env=env_for(config))

    assert done.popen.returncode == 69, done.describe()
    assert "the complaints wait in the outbox" in done.stderr()
    # The mail was committed before it left the inbox: nothing to fetch again.
    assert dovecot.count(account, "INBOX") == 0
    services = build_services(settings)
    try:
        assert count_rows(services.store, OutboxRow) == 1
        assert len(services.store.outbox.pending(10)) == 1
    finally:
        services.close()


def test_backfill_of_the_processed_folder_rebuilds_a_lost_store_and_moves_nothing(
    settings: Settings,
    services: Services,
    dovecot: DovecotServer,
    account: ImapAccount,
    intake_processes: IntakeProcesses,
) -> None:
    for number in range(4):
        dovecot.append(account, complaint_mail(number), ARRIVED)
    poll_and_normalize(services)
    # A store restored from an old backup: it never saw these complaints.
    fresh = imap_settings(settings, account).model_copy(
        update={"data_dir": settings.data_dir / "restored"}
    )
    env = env_for(fresh)

    runs = [
        intake_processes.run(
            "imap", "backfill", "--since", "2025-03-01", "--folder", "Processed", env=env
        )
        for _ in range(2)
    ]

    for run in runs:
        assert run.popen.returncode == 0, run.describe()
    assert "4/4" in runs[0].stderr()  # the progress bar
    assert "4 complaint(s) (4 already recorded)" in runs[1].stderr()
    restored = build_services(fresh)
    try:
        assert [item.received_at for item in complaints(restored)] == [ARRIVED] * 4
    finally:
        restored.close()
    assert dovecot.count(account, "Processed") == 4
    assert dovecot.count(account, "INBOX") == 0


def test_mail_over_a_limit_is_quarantined_by_the_runner_and_replays_at_its_internaldate(
    settings: Settings,
    dovecot: DovecotServer,
    account: ImapAccount,
) -> None:
    from gateway.ops.quarantine import replay
    from gateway.store.quarantine import Quarantine
    from tests.peers.hostile import many_parts_mail, marker

    dovecot.append(account, many_parts_mail(marker(), count=5), ARRIVED)
    strict = build_services(imap_settings(settings, account, email_max_parts=3))
    try:
        tally = poll_and_normalize(strict)
        assert tally.captured == 1
        assert dovecot.count(account, strict.settings.imap_processed_folder) == 1
        assert complaints(strict) == []
    finally:
        strict.close()
    services = build_services(imap_settings(settings, account))
    try:
        (item,) = Quarantine(services.store.engine).entries()
        assert item.reason_code == "too_many_parts"
        capture = services.store.captures.get(item.source_ids["capture_id"])
        assert capture is not None

        result = replay(services, item)

        assert result.ok, result.detail
        assert result.reference == capture.reference
        (message,) = complaints(services)
        assert message.reference == capture.reference
        # Dated from the IMAP INTERNALDATE (the legal clock's start), not the replay.
        assert message.received_at == ARRIVED
        assert message.evidence.imap_uid == 1
    finally:
        services.close()
