"""Staged intake: captures made durable by the edge, normalized by runners.

A runner killed mid-batch loses and duplicates nothing (a real SIGKILL of
``intake normalize-worker``); a normalizer that raises on one input
quarantines it while the others become complaints; a replay runs the same
step again with the capture's reference and receipt time; a follow-up
captured after its complaint is linked to it; several runners on
PostgreSQL take each capture once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

import channels.email.staged as staged
from channels.email.staged import capture_mail
from config.settings import Settings, load_settings
from gateway.lib.normalize_runner import NormalizeRunner
from gateway.lib.services import Services, build_services
from gateway.ops.quarantine import replay
from gateway.runner import capture_normalizers
from gateway.store.blobs import SCHEME
from gateway.store.captures import INLINE_MAX_BYTES, Capture, Captured, Finished
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, IntakeRow, OutboxRow, QuarantineRow
from tests.peers.processes import IntakeProcesses, intake_env, wait_until

pytestmark = pytest.mark.integration

ENVELOPE = {"smtp_peer": "203.0.113.7", "mail_from": "client@example.ma", "rcpt_to": ["c@x"]}


def mail(number: int, body: str = "Mon transfert n'est pas arrivé.", parts: int = 0) -> bytes:
    message = EmailMessage()
    message["From"] = f"client{number}@example.ma"
    message["To"] = "contact@cashplus.ma"
    message["Subject"] = f"Réclamation {number}"
    message["Message-ID"] = f"<staged-{number}@example.ma>"
    message["Date"] = "Sat, 05 Dec 2026 10:00:00 +0000"
    message.set_content(f"{body} ({number})")
    for index in range(parts):
        message.add_attachment(b"x" * 10, maintype="text", subtype="plain", filename=f"{index}.txt")
    return message.as_bytes()


def capture(services: Services, number: int, **kwargs: object) -> Captured:
    received = datetime(2026, 12, 5, 9, 0, tzinfo=UTC) + timedelta(seconds=number)
    return capture_mail(services, mail(number, **kwargs), received, dict(ENVELOPE))  # type: ignore[arg-type]


def runner(services: Services, name: str = "runner") -> NormalizeRunner:
    return NormalizeRunner(services, capture_normalizers(), name=name)


def complaint_ids(services: Services) -> list[str]:
    with reading(services.store.engine) as session:
        return list(session.scalars(select(ComplaintRow.id)))


def count(services: Services, model: type) -> int:
    with reading(services.store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_complaint_takes_the_capture_s_id_reference_and_receipt_time(
    services: Services,
) -> None:
    captured = capture(services, 1)
    assert runner(services).run_once() == 1
    message = services.store.complaints.get_by_reference(captured.reference)
    assert message is not None
    assert (message.id, message.received_at) == (captured.id, captured.received_at)
    assert message.ack_due_at == captured.ack_due_at
    assert services.store.captures.state_of(captured.id) == ("done", "complaint", captured.id)
    assert services.store.captures.backlog() == []


def stored_row(services: Services, capture_id: str) -> IntakeRow:
    with reading(services.store.engine) as session:
        return session.get_one(IntakeRow, capture_id)


def test_a_small_input_rides_in_its_row_until_a_runner_writes_it_out(
    services: Services,
) -> None:
    captured = capture(services, 1)
    row = stored_row(services, captured.id)
    raw = mail(1)
    # Durable with the row alone: no blob yet, its future name is the bytes' hash.
    assert row.data == raw and len(raw) <= INLINE_MAX_BYTES
    assert row.stored_at == SCHEME + hashlib.sha256(raw).hexdigest()
    assert not services.store.blobs.exists(row.stored_at)
    assert services.store.captures.data_of(services.store.captures.get(captured.id)) == raw  # type: ignore[arg-type]

    assert runner(services).run_once() == 1
    row = stored_row(services, captured.id)
    assert row.data is None
    assert services.store.blobs.get(row.stored_at) == raw
    message = services.store.complaints.get_by_reference(captured.reference)
    assert message is not None and message.evidence.stored_at == row.stored_at


def test_a_large_input_is_a_blob_before_the_edge_answers(services: Services) -> None:
    big = mail(1, body="x" * (INLINE_MAX_BYTES + 1))
    captured = capture_mail(services, big, datetime(2026, 12, 5, 9, 0, tzinfo=UTC), {})
    row = stored_row(services, captured.id)
    assert row.data is None
    assert services.store.blobs.get(row.stored_at) == big
    assert runner(services).run_once() == 1
    assert services.store.complaints.get_by_reference(captured.reference) is not None


def test_the_same_bytes_captured_again_answer_the_first_reference(services: Services) -> None:
    first = capture(services, 1)
    again = capture(services, 1)
    assert (again.reference, again.created) == (first.reference, False)
    runner(services).run_once()
    # Still the first one's after it was normalized.
    later = capture(services, 1)
    assert (later.reference, later.created) == (first.reference, False)
    assert count(services, IntakeRow) == 1 and count(services, ComplaintRow) == 1


def test_the_same_mail_captured_with_other_bytes_is_a_repeat_of_the_first_complaint(
    services: Services,
) -> None:
    first = capture(services, 1)
    # The same mail through another path: another Received line, same Message-ID and text.
    other = capture_mail(
        services, b"Received: from mx2.example\r\n" + mail(1), first.received_at, dict(ENVELOPE)
    )
    assert other.reference != first.reference
    runner(services).run_once()
    assert services.store.captures.state_of(other.id) == ("done", "repeat", first.id)
    assert complaint_ids(services) == [first.id]


def test_a_normalizer_that_raises_on_one_input_quarantines_it_and_the_others_go_on(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad, other = capture(services, 1), capture(services, 2), capture(services, 3)
    real = staged.read_mail

    def broken_on_two(services: Services, arrival: staged.MailArrival) -> object:
        if b"<staged-2@" in arrival.raw:
            raise ZeroDivisionError("a bug in a step")
        return real(services, arrival)

    monkeypatch.setattr(staged, "read_mail", broken_on_two)
    runner(services).run_once()
    assert sorted(complaint_ids(services)) == sorted([good.id, other.id])
    with reading(services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
    assert item.reason_code == "normalizer_failed"
    assert "ZeroDivisionError" in item.reason
    assert item.source_ids["capture_id"] == bad.id
    assert services.store.captures.state_of(bad.id) == ("quarantined", "quarantined", item.id)

    # Fixed: the replay runs the runner's step again, with the capture's reference and date.
    monkeypatch.undo()
    result = replay(services, services.store.quarantine.get(item.id))  # type: ignore[arg-type]
    assert result.ok, result.detail
    message = services.store.complaints.get_by_reference(bad.reference)
    assert message is not None
    assert (message.id, message.received_at) == (bad.id, bad.received_at)
    assert services.store.captures.state_of(bad.id) == ("done", "complaint", bad.id)


def test_a_replay_after_raising_a_limit_keeps_the_capture_s_receipt_time(
    settings: Settings,
) -> None:
    strict = build_services(settings.model_copy(update={"email_max_parts": 3}))
    try:
        captured = capture(strict, 1, parts=4)
        runner(strict).run_once()
        with reading(strict.store.engine) as session:
            item = session.scalars(select(QuarantineRow)).one()
        assert item.reason_code == "too_many_parts"
        assert strict.store.complaints.get_by_reference(captured.reference) is None
    finally:
        strict.close()
    relaxed = build_services(settings.model_copy(update={"email_max_parts": 50}))
    try:
        result = replay(relaxed, relaxed.store.quarantine.get(item.id))  # type: ignore[arg-type]
        assert result.ok, result.detail
        message = relaxed.store.complaints.get_by_reference(captured.reference)
        assert message is not None
        assert (
            message.received_at
            == captured.received_at
            == datetime(2026, 12, 5, 9, 0, 1, tzinfo=UTC)
        )
        assert len(message.attachments) == 4
    finally:
        relaxed.close()


def test_a_follow_up_captured_after_its_complaint_is_linked_in_the_same_batch(
    services: Services,
) -> None:
    first = capture(services, 1)
    follow = capture(services, 2, body=f"Suite à ma réclamation {first.reference}, rien.")
    assert runner(services).run_once() == 2
    message = services.store.complaints.get_by_reference(follow.reference)
    assert message is not None and message.follow_up_of == first.reference


def test_a_follow_up_of_a_complaint_another_runner_is_still_recording_is_linked(
    services: Services,
) -> None:
    first = capture(services, 1)
    follow = capture(services, 2, body=f"Suite à ma réclamation {first.reference}, rien.")
    # Another runner holds the first one (not recorded yet); this one takes the follow-up.
    claimed = services.store.captures.claim("other", limit=1, lease=60, channels=["email"])
    assert [item.id for item in claimed] == [first.id]
    assert runner(services).run_once() == 1
    message = services.store.complaints.get_by_reference(follow.reference)
    assert message is not None and message.follow_up_of == first.reference
    assert services.store.complaints.get_by_reference(first.reference) is None


def test_a_follow_up_of_a_reference_nobody_issued_keeps_its_text_without_a_link(
    services: Services,
) -> None:
    follow = capture(services, 2, body="Suite à ma réclamation CP-PQMW-JFQS, rien.")
    assert runner(services).run_once() == 1
    message = services.store.complaints.get_by_reference(follow.reference)
    assert message is not None and message.follow_up_of is None
    assert "CP-PQMW-JFQS" in message.body


def test_a_claim_left_by_a_dead_runner_expires_and_the_next_one_writes_each_once(
    settings: Settings,
) -> None:
    services = build_services(settings.model_copy(update={"normalize_lease_seconds": 0.3}))
    try:
        captures = [capture(services, number) for number in range(6)]
        dead = services.store.captures.claim("dead", limit=3, lease=0.3, channels=["email"])
        # It wrote the complaints of its batch, then died before saying so.
        staged.normalize_mail_captures(services, dead)
        assert runner(services, "alive").run_once() == 3  # the other three only
        wait_until(lambda: runner(services, "later").run_once() == 3, "the expired claim")
        assert sorted(complaint_ids(services)) == sorted(item.id for item in captures)
        assert count(services, OutboxRow) == 6
        assert services.store.captures.backlog() == []
    finally:
        services.close()


def test_an_input_that_kills_its_runner_every_time_is_quarantined_at_last(
    services: Services,
) -> None:
    captured = capture(services, 1)
    for _attempt in range(5):  # five claims that never finished
        services.store.captures.claim("doomed", limit=1, lease=0, channels=["email"])
    runner(services).run_once()
    with reading(services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
    assert item.reason_code == "too_many_attempts"
    assert services.store.captures.state_of(captured.id) == ("quarantined", "quarantined", item.id)
    assert complaint_ids(services) == []


@pytest.fixture
def backlog_settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", normalize_batch_size=20)


def test_a_runner_killed_mid_backlog_loses_nothing_and_duplicates_nothing(
    backlog_settings: Settings, intake_processes: IntakeProcesses
) -> None:
    services = build_services(backlog_settings)
    try:
        captured = {capture(services, number).id for number in range(400)}
        # Claims held 2 s: the next runner takes the dead one's batch soon after.
        env = intake_env(
            data_dir=backlog_settings.data_dir, normalize_batch_size=20, normalize_lease_seconds=2
        )
        worker = intake_processes.start("normalize-worker", env=env)
        wait_until(lambda: len(complaint_ids(services)) >= 60, "the runner to get going")
        # Background work: the edges on the same host get the cores first.
        niceness = os.getpriority(os.PRIO_PROCESS, worker.pid)
        assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        worker.signal(signal.SIGKILL)
        worker.wait()
        assert len(complaint_ids(services)) < 400, "the runner finished before it was killed"
        again = intake_processes.start("normalize-worker", env=env)
        wait_until(lambda: not services.store.captures.backlog(), "the whole backlog")
        again.signal(signal.SIGTERM)
        assert again.wait() == 0, again.describe()
        ids = complaint_ids(services)
        assert len(ids) == len(set(ids)) == 400
        assert set(ids) == captured
        assert count(services, OutboxRow) == 400
    finally:
        services.close()


@pytest.fixture
def postgres_services(postgres_url: str, tmp_path: Path) -> Iterator[Services]:
    built = build_services(load_settings(data_dir=tmp_path / "pg", database_url=postgres_url))
    try:
        yield built
    finally:
        built.close()


def test_runners_on_postgresql_share_the_work_and_take_each_capture_once(
    postgres_services: Services,
) -> None:
    services = postgres_services
    captured = {capture(services, number).id for number in range(120)}
    claimed: list[list[str]] = [[], [], []]

    def work(index: int) -> None:
        while True:
            batch = services.store.captures.claim(
                f"r{index}", limit=10, lease=60, channels=["email"]
            )
            if not batch:
                return
            claimed[index].extend(item.id for item in batch)
            outcomes = staged.normalize_mail_captures(services, batch)
            services.store.captures.finish([o for o in outcomes if not isinstance(o, Exception)])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    every = [item for batch in claimed for item in batch]
    assert sorted(every) == sorted(captured)  # each capture claimed by one runner, once
    assert sorted(complaint_ids(services)) == sorted(captured)


def test_a_batch_is_captured_in_one_commit_with_its_repeats_answered(services: Services) -> None:
    received = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    items = [
        Capture(
            channel="email",
            data=raw,
            content_type="message/rfc822",
            received_at=received,
            dedup_key=f"email:capture:{number}",
        )
        for number, raw in ((1, mail(1)), (2, mail(2)), (1, mail(1)))
    ]
    batches = services.store.captures.group.batches
    first, second, repeat = services.store.captures.capture_many(items)
    assert services.store.captures.group.batches == batches + 1
    assert isinstance(first, Captured) and isinstance(second, Captured)
    assert isinstance(repeat, Captured)
    assert (repeat.reference, repeat.created) == (first.reference, False)
    assert first.reference != second.reference
    assert count(services, IntakeRow) == 2


def test_a_runner_outlives_a_failing_batch_and_finishes_the_work_later(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(settings.model_copy(update={"normalize_lease_seconds": 0.2}))
    captured = capture(services, 1)
    real_finish = services.store.captures.finish
    failures: list[int] = []

    def finish_failing_once(finished: list[Finished]) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("a bug after the commit")
        real_finish(finished)

    monkeypatch.setattr(services.store.captures, "finish", finish_failing_once)
    monkeypatch.setattr("gateway.lib.normalize_runner.RETRY_AFTER_STORE_FAILURE", 0.1)
    stop = threading.Event()
    thread = threading.Thread(target=runner(services).run, args=(stop,), daemon=True)
    thread.start()
    done = ("done", "complaint", captured.id)
    try:
        wait_until(
            lambda: services.store.captures.state_of(captured.id) == done,
            "the capture finished after the failed batch",
        )
        assert failures == [1] and complaint_ids(services) == [captured.id]
    finally:
        stop.set()
        thread.join(10)
        services.close()
