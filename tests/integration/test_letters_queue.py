"""The letters table as a work queue (PostgreSQL, SKIP LOCKED), and a letter reaching RabbitMQ.

Also the queue's repairs: a claim renewed by a live worker, and a letter
whose row was lost between its two commits queued again from its evidence;
and OCR finishing after its complaint was published (its hold ran out): the
text follows as an amendment, as for a late phone transcript.
"""

import json
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from channels.letters import intake
from channels.letters.intake import LetterFile, LetterUpload, accept_letter, requeue_orphans
from config.settings import Settings
from gateway.lib.logs import MaskingFilter
from gateway.lib.services import Services, build_services
from gateway.store.db import reading, writing
from gateway.store.letters import DONE, LetterOutcome
from gateway.store.revisions import RELAY_MARGIN, Outcome
from gateway.store.tables import ComplaintRow, LetterRow, OutboxRow
from normalizer.contract import ComplaintMessage
from router.consumer import consume_messages
from router.relay import build_relay
from tests.peers import scans
from tests.peers.ocr import ocr_worker
from tests.peers.processes import IntakeProcesses, env_for, wait_until


@pytest.fixture
def pg_services(settings: Settings, postgres_url: str) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"database_url": postgres_url}))
    yield built
    built.close()


def small_letter(text: str) -> LetterUpload:
    return LetterUpload(files=[LetterFile("l.pdf", scans.text_pdf((text,)))], source="api")


def test_two_workers_never_claim_the_same_letter_on_postgresql(pg_services: Services) -> None:
    for index in range(6):
        accept_letter(pg_services, small_letter(f"Lettre numero {index} " * 4))
    queue = pg_services.store.letters
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        while (row := queue.claim(timedelta(minutes=5))) is not None:
            with lock:
                claimed.append(row.id)

    threads = [threading.Thread(target=claimer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(claimed) == 6
    assert len(set(claimed)) == 6


def test_letter_whose_worker_died_is_claimed_again(pg_services: Services) -> None:
    accepted = accept_letter(pg_services, small_letter("Lettre abandonnee par un worker " * 3))
    queue = pg_services.store.letters
    first = queue.claim(timedelta(minutes=5))
    assert first is not None and first.id == accepted.letter_id
    assert queue.claim(timedelta(minutes=5)) is None
    again = queue.claim(timedelta(seconds=0))
    assert again is not None and again.id == accepted.letter_id
    assert again.attempts == 2


def test_read_letter_is_published_on_rabbitmq(amqp_settings: Settings) -> None:
    services = build_services(amqp_settings)
    try:
        page = scans.encode(scans.render_page(scans.FRENCH_LETTER), "png")
        accepted = accept_letter(
            services, LetterUpload(files=[LetterFile("p1.png", page)], source="api")
        )
        relay = build_relay(services.settings, services.store)
        assert relay.publish_pending().published == 0  # held while OCR runs
        queue = services.store.letters
        with ocr_worker(services):
            wait_until(lambda: queue.get(accepted.letter_id).status == "done", "OCR", timeout=120)
        wait_until(lambda: relay.publish_pending().published == 1, "the relay to publish")
        relay.close()
        received: list[str] = []
        consume_messages(amqp_settings, received.append, count=1, timeout=20)
        event = json.loads(received[0])
        assert event["subject"] == accepted.reference
        assert event["data"]["channel"] == "letter"
        assert event["data"]["language"]["tag"] == "fr"
        assert "Casablanca" in event["data"]["body"]
        # A clean page reads well above the review threshold.
        (attachment,) = event["data"]["attachments"]
        assert 0.6 < attachment["ocr_confidence"] <= 1.0
        assert event["data"]["needs_review"] is False
    finally:
        services.close()


def test_letter_read_below_the_review_confidence_is_flagged_for_a_person(
    settings: Settings,
) -> None:
    # No page reaches a threshold of 100 %: the letter must be read by a person.
    services = build_services(settings.model_copy(update={"ocr_review_confidence": 100.0}))
    try:
        page = scans.encode(scans.render_page(scans.FRENCH_LETTER), "png")
        accepted = accept_letter(
            services, LetterUpload(files=[LetterFile("p1.png", page)], source="api")
        )
        queue = services.store.letters
        with ocr_worker(services):
            wait_until(lambda: queue.get(accepted.letter_id).status == "done", "OCR", timeout=120)
        complaint = services.store.complaints.get_by_reference(accepted.reference)
        assert complaint is not None and complaint.needs_review
        assert "page(s) 1" in (complaint.subject or "")
        assert complaint.attachments[0].ocr_confidence is not None
    finally:
        services.close()


def test_ocr_worker_process_reads_waiting_letters_and_stops_on_sigterm(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    services = build_services(settings)
    try:
        accepted = accept_letter(services, small_letter("Lettre pour le worker OCR " * 3))
        worker = intake_processes.start("ocr-worker", "--workers", "1", env=env_for(settings))
        queue = services.store.letters
        wait_until(lambda: queue.get(accepted.letter_id).status == "done", "the OCR worker")
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.describe()
    finally:
        services.close()


def _claimed_long_ago(services: Services, letter_id: str) -> None:
    with writing(services.store.engine) as session:
        session.execute(
            update(LetterRow)
            .where(LetterRow.id == letter_id)
            .values(claimed_at=datetime.now(UTC) - timedelta(hours=1))
        )


def test_running_letter_whose_worker_renews_its_claim_is_not_taken_again(
    pg_services: Services,
) -> None:
    accept_letter(pg_services, small_letter("Lettre longue a lire page par page " * 3))
    queue = pg_services.store.letters
    row = queue.claim(timedelta(minutes=5))
    assert row is not None
    _claimed_long_ago(pg_services, row.id)  # a long letter, read for an hour already
    queue.touch(row.id)
    assert queue.claim(timedelta(minutes=5)) is None


def test_letter_recorded_without_its_ocr_job_is_queued_from_its_evidence(
    pg_services: Services,
) -> None:
    accepted = accept_letter(pg_services, small_letter("Lettre dont le job OCR fut perdu " * 3))
    queue = pg_services.store.letters
    lost = queue.get(accepted.letter_id)
    assert lost is not None
    # A crash between the complaint's commit and the letter row's.
    with writing(pg_services.store.engine) as session:
        session.execute(delete(LetterRow).where(LetterRow.id == accepted.letter_id))
    # A fresh upload may still be between its two commits: left alone.
    assert requeue_orphans(pg_services, timedelta(hours=1)) == 0
    assert requeue_orphans(pg_services, timedelta(0)) == 1
    assert requeue_orphans(pg_services, timedelta(0)) == 0
    found = queue.by_complaint(accepted.complaint_id)
    assert found is not None
    assert (found.files, found.pages, found.source) == (lost.files, lost.pages, lost.source)
    with ocr_worker(pg_services):
        wait_until(lambda: queue.get(found.id).status == "done", "OCR", timeout=120)
    complaint = pg_services.store.complaints.get_by_reference(accepted.reference)
    assert complaint is not None and "job OCR" in complaint.body


def _lose_letter_row(services: Services, letter_id: str) -> None:
    """A crash between the complaint's commit and the letter row's."""
    with writing(services.store.engine) as session:
        session.execute(delete(LetterRow).where(LetterRow.id == letter_id))


def _evidence_of_an_unknown_type(services: Services, complaint_id: str) -> None:
    """The complaint's manifest names a scan type no longer accepted."""
    with writing(services.store.engine) as session:
        row = session.get(ComplaintRow, complaint_id)
        assert row is not None
        message = ComplaintMessage.model_validate_json(row.message)
        manifest = json.loads(services.store.blobs.get(message.evidence.sha256))
        manifest["files"][0]["content_type"] = "image/x-retired-scanner"
        stored = services.store.blobs.put(json.dumps(manifest).encode())
        evidence = message.evidence.model_copy(update={"sha256": stored.sha256})
        row.message = message.model_copy(update={"evidence": evidence}).model_dump_json()


def test_orphan_whose_evidence_cannot_be_read_does_not_keep_the_others_from_ocr(
    pg_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    broken = accept_letter(pg_services, small_letter("Lettre au manifeste illisible " * 3))
    sound = accept_letter(pg_services, small_letter("Lettre au manifeste intact " * 3))
    for accepted in (broken, sound):
        _lose_letter_row(pg_services, accepted.letter_id)
    _evidence_of_an_unknown_type(pg_services, broken.complaint_id)
    queue = pg_services.store.letters

    caplog.handler.addFilter(
        MaskingFilter()
    )  # stamps each line with its complaint, as in production
    with caplog.at_level("ERROR", logger="intake.letters"):
        assert requeue_orphans(pg_services, timedelta(0)) == 1

    assert queue.by_complaint(sound.complaint_id) is not None
    assert queue.by_complaint(broken.complaint_id) is None
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert broken.reference in error.getMessage() and "KeyError" in error.getMessage()
    assert getattr(error, "complaint", None) == broken.complaint_id


def test_ocr_finishing_after_the_hold_ran_out_is_published_as_an_amendment(
    amqp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hold runs out at once: the complaint is published before its OCR.
    monkeypatch.setattr(intake, "OCR_HOLD", timedelta(0))
    services = build_services(amqp_settings)
    try:
        page = scans.encode(scans.render_page(scans.FRENCH_LETTER), "png")
        accepted = accept_letter(
            services, LetterUpload(files=[LetterFile("p1.png", page)], source="api")
        )
        relay = build_relay(services.settings, services.store)
        assert relay.publish_pending().published == 1  # unread, its hold over
        queue = services.store.letters
        with ocr_worker(services):
            wait_until(lambda: queue.get(accepted.letter_id).status == "done", "OCR", timeout=120)
        wait_until(lambda: relay.publish_pending().published == 1, "the amendment")
        relay.close()
        received: list[str] = []
        consume_messages(amqp_settings, received.append, count=2, timeout=20)
        stored = services.store.complaints.get_by_reference(accepted.reference)
    finally:
        services.close()

    first, amended = (json.loads(body) for body in received)
    assert first["type"] == "ma.cashplus.complaint.received.v1"
    assert first["data"]["body"] == ""
    assert amended["type"] == "ma.cashplus.complaint.amended.v1"
    assert amended["data"]["id"] == first["data"]["id"] == accepted.complaint_id
    assert amended["id"] != first["id"]
    assert "body" in amended["amendedfields"].split(",")
    assert "Casablanca" in amended["data"]["body"]
    assert amended["data"]["language"]["tag"] == "fr"
    # The stored complaint says what the amendment said.
    assert stored is not None and "Casablanca" in stored.body


def _outbox_of(services: Services, complaint_id: str) -> list[OutboxRow]:
    with reading(services.store.engine) as session:
        return list(
            session.scalars(
                select(OutboxRow)
                .where(OutboxRow.complaint_id == complaint_id)
                .order_by(OutboxRow.id)
            )
        )


def _read_by_hand(services: Services, reference: str) -> LetterOutcome:
    complaint = services.store.complaints.get_by_reference(reference)
    assert complaint is not None
    return LetterOutcome(
        DONE, complaint.model_copy(update={"body": "Lu a la main", "subject": None})
    )


def test_ocr_finishing_within_the_relay_margin_of_the_hold_is_amended_not_rewritten(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay may already have read a row due this close: it is not rewritten.
    monkeypatch.setattr(intake, "OCR_HOLD", RELAY_MARGIN / 2)
    accepted = accept_letter(services, small_letter("Lettre lue au dernier moment " * 3))
    queue = services.store.letters
    row = queue.claim(timedelta(minutes=5))
    assert row is not None and row.id == accepted.letter_id

    revision = queue.complete(row.id, _read_by_hand(services, accepted.reference))

    assert revision is not None and revision.outcome == Outcome.AMENDED
    original, amendment = _outbox_of(services, accepted.complaint_id)
    assert json.loads(original.payload)["data"]["body"] == ""
    assert json.loads(amendment.payload)["data"]["body"] == "Lu a la main"
    assert queue.get(row.id).status == DONE


def test_ocr_finishing_within_the_hold_rewrites_and_releases_the_complaint(
    services: Services,
) -> None:
    accepted = accept_letter(services, small_letter("Lettre lue a temps " * 3))
    queue = services.store.letters
    row = queue.claim(timedelta(minutes=5))
    assert row is not None

    revision = queue.complete(row.id, _read_by_hand(services, accepted.reference))

    assert revision is not None and revision.outcome == Outcome.RELEASED
    (released,) = _outbox_of(services, accepted.complaint_id)
    assert json.loads(released.payload)["data"]["body"] == "Lu a la main"
    assert released.available_at is not None
    assert released.available_at.replace(tzinfo=UTC) <= datetime.now(UTC)
