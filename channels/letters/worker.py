"""The OCR worker: takes letters from the queue, reads them, releases their complaints.

``intake ocr-worker`` (Procfile ``ocr``) and ``intake run`` start
``settings.ocr_workers`` threads; each runs one sandboxed OCR job at a
time, so with two workers both cores are busy and a hostile file costs one
of them a few seconds. The finished complaint carries the OCR text as its
body, the per-file text on each attachment, the language of the text, and a
subject flagging pages under the review confidence for a human.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from channels.letters.intake import scan_limits
from channels.letters.models import DONE, FAILED, LetterRow
from channels.letters.queue import LetterQueue, Outcome
from gateway.logs import complaint_context
from gateway.services import Services
from gateway.store import StoreUnavailable
from normalizer.contract import ComplaintMessage
from normalizer.draft import ComplaintDraft
from normalizer.ocr import DocumentResult, OcrFailed, run_ocr
from normalizer.ocr.job import ScanFile
from normalizer.pipeline import normalize

log = logging.getLogger("intake.ocr")

IDLE_WAIT = 0.5
REVIEW_SUBJECT = (
    "Courrier postal, OCR à vérifier : page(s) {pages} sous {threshold:g} % de confiance"
)
FAILED_SUBJECT = "Courrier postal illisible par OCR, à lire sur les scans : {reason}"


def stale_after(services: Services) -> timedelta:
    return timedelta(seconds=services.settings.ocr_timeout * 2 + 60)


def _queue(services: Services) -> LetterQueue:
    return LetterQueue(services.store.engine, services.settings.event_source)


def read_letter(services: Services, row: LetterRow, thumbnail: Path) -> DocumentResult:
    blobs = services.store.blobs
    files = [ScanFile(blobs.path_for(item["sha256"]), item["kind"]) for item in row.files]
    return run_ocr(files, scan_limits(services.settings), thumbnail)


def finished_message(
    services: Services, complaint: ComplaintMessage, row: LetterRow, result: DocumentResult
) -> tuple[ComplaintMessage, list[int]]:
    """The complaint with its OCR text, language, per-file text, and the review flag."""
    draft = ComplaintDraft(
        channel=complaint.channel,
        received_at=complaint.received_at,
        body=result.text,
        customer=complaint.customer,
    )
    normalize(draft, services.pipeline)
    follow_up = draft.follow_up_of
    if follow_up and not services.store.complaints.reference_exists(follow_up):
        follow_up = None
    threshold = services.settings.ocr_review_confidence
    low = result.low_confidence_pages(threshold)
    subject = REVIEW_SUBJECT.format(pages=", ".join(map(str, low)), threshold=threshold)
    attachments, start = [], 0
    for attachment, item in zip(complaint.attachments, row.files, strict=False):
        pages = result.pages[start : start + int(item["pages"])]
        start += int(item["pages"])
        text = "\n\n".join(page.text for page in pages).strip() or None
        lowest = min((page.confidence for page in pages), default=None)
        confidence = None if lowest is None else round(lowest / 100, 3)
        attachments.append(
            attachment.model_copy(update={"ocr_text": text, "ocr_confidence": confidence})
        )
    message = complaint.model_copy(
        update={
            "body": draft.body,
            "language": draft.language,
            "follow_up_of": follow_up,
            "subject": subject if low else None,
            "needs_review": bool(low),
            "attachments": attachments,
            "processed_at": datetime.now(UTC),
        }
    )
    return message, low


def process_letter(services: Services, row: LetterRow) -> str:
    """OCR one claimed letter and write the outcome; returns the letter's new status."""
    queue = _queue(services)
    complaint = services.store.complaints.get_by_reference(row.reference)
    if complaint is None:  # cannot happen: the row points at its complaint
        raise StoreUnavailable(f"complaint of letter {row.id} not found")
    with tempfile.TemporaryDirectory(prefix="intake-thumb-") as folder:
        thumbnail = Path(folder) / "thumbnail.png"
        try:
            result = read_letter(services, row, thumbnail)
        except OcrFailed as exc:
            if exc.internal and not queue.give_up_on(row):
                log.error("OCR job failed on our side, letter %s goes back: %s", row.id, exc)
                queue.retry_later(row.id)
                return "pending"
            return _fail(services, queue, complaint, row, exc)
        thumb = (
            services.store.blobs.put(thumbnail.read_bytes()).location
            if (thumbnail.exists())
            else None
        )
    message, low = finished_message(services, complaint, row, result)
    summary = {**result.to_json(), "review": bool(low), "low_confidence_pages": low}
    released = queue.complete(row.id, Outcome(DONE, message, summary, thumb))
    if not released:
        log.warning("letter %s was published before its OCR finished", row.reference)
    log.info(
        "letter %s read: %d page(s), %s, min confidence %.0f",
        row.reference,
        len(result.pages),
        message.language.tag,
        result.min_confidence,
    )
    return DONE


def _fail(
    services: Services,
    queue: LetterQueue,
    complaint: ComplaintMessage,
    row: LetterRow,
    exc: OcrFailed,
) -> str:
    reason = exc.reason("fr")
    message = complaint.model_copy(
        update={
            "subject": FAILED_SUBJECT.format(reason=reason),
            "needs_review": True,
            "processed_at": datetime.now(UTC),
        }
    )
    queue.complete(row.id, Outcome(FAILED, message, None, None, exc.code, reason))
    log.warning("letter %s could not be read: %s", row.reference, exc.code)
    return FAILED


def work(services: Services, stop: threading.Event) -> None:
    """One worker: claim, read, release, until ``stop`` is set."""
    queue = _queue(services)
    while not stop.is_set():
        try:
            row = queue.claim(stale_after(services))
        except StoreUnavailable:
            stop.wait(5)
            continue
        except Exception:
            log.exception("claiming a letter failed")
            stop.wait(5)
            continue
        if row is None:
            stop.wait(IDLE_WAIT)
            continue
        with complaint_context(row.complaint_id):
            try:
                process_letter(services, row)
            except Exception as exc:
                log.exception("letter %s: OCR worker error", row.id)
                if queue.give_up_on(row):
                    queue.abandon(row.id, f"{type(exc).__name__}: {exc}")
                else:
                    queue.retry_later(row.id)
                stop.wait(1)


def run_ocr_workers(services: Services, stop: threading.Event, count: int | None = None) -> None:
    """``count`` (default ``settings.ocr_workers``) workers in threads, until ``stop``."""
    threads = [
        threading.Thread(target=work, args=(services, stop), name=f"ocr-{index}", daemon=True)
        for index in range(count or services.settings.ocr_workers)
    ]
    for thread in threads:
        thread.start()
    log.info("%d OCR worker(s) started", len(threads))
    for thread in threads:
        thread.join()
