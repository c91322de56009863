"""The letters table as a work queue (PostgreSQL, SKIP LOCKED), and a letter reaching RabbitMQ.

Also the queue's repairs: a claim renewed by a live worker, and a letter
whose row was lost between its two commits queued again from its evidence.
"""

import json
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from channels.letters.intake import LetterFile, LetterUpload, accept_letter, requeue_orphans
from channels.letters.queue import LetterQueue
from config.settings import Settings
from gateway.lib.logs import MaskingFilter
from gateway.lib.services import Services, build_services
from gateway.store.db import writing
from gateway.store.tables import ComplaintRow, LetterRow
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
    queue = LetterQueue(pg_services.store.engine)
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
    queue = LetterQueue(pg_services.store.engine)
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
        queue = LetterQueue(services.store.engine)
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
        queue = LetterQueue(services.store.engine)
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
        queue = LetterQueue(services.store.engine)
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
    queue = LetterQueue(pg_services.store.engine)
    row = queue.claim(timedelta(minutes=5))
    assert row is not None
    _claimed_long_ago(pg_services, row.id)  # a long letter, read for an hour already
    queue.touch(row.id)
    assert queue.claim(timedelta(minutes=5)) is None


def test_letter_recorded_without_its_ocr_job_is_queued_from_its_evidence(
    pg_services: Services,
) -> None:
    accepted = accept_letter(pg_services, small_letter("Lettre dont le job OCR fut perdu " * 3))
    queue = LetterQueue(pg_services.store.engine)
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
    queue = LetterQueue(pg_services.store.engine)

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
