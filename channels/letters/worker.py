"""The OCR worker: takes letters from the queue, reads them, releases their complaints.

``intake.accept_letter`` (a ``pending`` letter, its complaint held) ->
``Store.letters.claim`` -> **here** (the sandboxed OCR job, the normalizer
pipeline, the review flag) -> ``Store.letters.complete`` (the complaint
released with its text, or amended if its hold ran out first) -> the relay.

``intake ocr-worker`` (Procfile ``ocr``) and ``intake run`` start
``settings.ocr_workers`` threads; each runs one sandboxed OCR job at a
time, so with two workers both cores are busy and a hostile file costs one
of them a few seconds. The finished complaint carries the OCR text as its
body, the per-file text on each attachment, the language of the text, and a
subject flagging pages under the review confidence for a human (blank pages
do not count, unless the whole letter is blank). A worker renews its claim
while it reads, so a long letter is never taken by a second worker.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from channels.letters.intake import requeue_orphans, scan_limits
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.letters import DONE, FAILED, LetterOutcome, LetterQueue, LetterRow
from gateway.store.revisions import Outcome
from normalizer.contract import ComplaintMessage
from normalizer.draft import ComplaintDraft
from normalizer.ocr import DocumentResult, OcrFailed, PageResult, run_ocr
from normalizer.ocr.job import ScanFile
from normalizer.pipeline import normalize

log = logging.getLogger("intake.ocr")

IDLE_WAIT = 0.5
# How often, and past what age, held letter complaints without an OCR job are queued.
ORPHAN_SWEEP = timedelta(minutes=5)
ORPHAN_GRACE = timedelta(minutes=1)
REVIEW_SUBJECT = (
    "Courrier postal, OCR à vérifier : page(s) {pages} sous {threshold:g} % de confiance"
)
FAILED_SUBJECT = "Courrier postal illisible par OCR, à lire sur les scans : {reason}"


def stale_after(services: Services) -> timedelta:
    return timedelta(seconds=services.settings.ocr_timeout * 2 + 60)


def read_letter(services: Services, row: LetterRow, thumbnail: Path) -> DocumentResult:
    blobs = services.store.blobs
    files = [
        ScanFile(blobs.path_for(item["sha256"]), item["kind"], int(item["pages"]))
        for item in row.files
    ]
    return run_ocr(files, scan_limits(services.settings), thumbnail)


def with_ocr_review(
    complaint: ComplaintMessage, file_pages: list[int], result: DocumentResult, threshold: float
) -> tuple[ComplaintMessage, list[int]]:
    """The review flag, its subject, and each attachment's OCR text and confidence.

    Shared by the worker and ``intake normalize SCAN``, so the preview is the
    complaint the worker publishes. ``file_pages``: pages of each attachment,
    in order. Returns the complaint and the pages under ``threshold``.
    """
    low = result.low_confidence_pages(threshold)
    subject = REVIEW_SUBJECT.format(pages=", ".join(map(str, low)), threshold=threshold)
    attachments, start = [], 0
    for attachment, count in zip(complaint.attachments, file_pages, strict=False):
        pages = result.pages[start : start + count]
        start += count
        text = "\n\n".join(page.text for page in pages).strip() or None
        attachments.append(
            attachment.model_copy(
                update={"ocr_text": text, "ocr_confidence": _file_confidence(pages)}
            )
        )
    message = complaint.model_copy(
        update={
            "subject": subject if low else None,
            "needs_review": bool(low),
            "attachments": attachments,
        }
    )
    return message, low


def _file_confidence(pages: list[PageResult]) -> float | None:
    """A file's lowest page confidence (0-1); None when it has no written page to rate."""
    written = [page.confidence for page in pages if not page.blank]
    return round(min(written) / 100, 3) if written else None


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
    read = complaint.model_copy(
        update={
            "body": draft.body,
            "language": draft.language,
            "follow_up_of": follow_up,
            "processed_at": datetime.now(UTC),
        }
    )
    file_pages = [int(item["pages"]) for item in row.files]
    return with_ocr_review(read, file_pages, result, services.settings.ocr_review_confidence)


def process_letter(services: Services, row: LetterRow) -> str:
    """OCR one claimed letter and write the outcome; returns the letter's new status."""
    queue = services.store.letters
    complaint = services.store.complaints.get_by_reference(row.reference)
    if complaint is None:  # cannot happen: the row points at its complaint
        raise StoreUnavailable(f"complaint of letter {row.id} not found")
    with tempfile.TemporaryDirectory(prefix="intake-thumb-") as folder:
        thumbnail = Path(folder) / "thumbnail.png"
        try:
            with _claim_kept(queue, row.id, stale_after(services) / 3):
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
    revision = queue.complete(row.id, LetterOutcome(DONE, message, summary, thumb))
    if revision is None or revision.outcome != Outcome.RELEASED:
        log.warning(
            "letter %s was published before its OCR finished (%s)",
            row.reference,
            revision.outcome.value if revision else "complaint not found",
        )
    log.info(
        "letter %s read: %d page(s), %s, min confidence %.0f",
        row.reference,
        len(result.pages),
        message.language.tag,
        result.min_confidence,
    )
    return DONE


@contextmanager
def _claim_kept(queue: LetterQueue, letter_id: str, every: timedelta) -> Iterator[None]:
    """Renew the claim while the letter is read: a long letter takes longer than
    ``stale_after``, and no other worker may take it meanwhile."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(every.total_seconds()):
            try:
                queue.touch(letter_id)
            except Exception as exc:  # the next renewal may get through
                log.warning("could not renew the claim on letter %s: %s", letter_id, exc)

    keeper = threading.Thread(target=renew, name=f"claim-{letter_id[:8]}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


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
    queue.complete(row.id, LetterOutcome(FAILED, message, None, None, exc.code, reason))
    log.warning("letter %s could not be read: %s", row.reference, exc.code)
    return FAILED


def work(services: Services, stop: threading.Event) -> None:
    """One worker: claim, read, release, until ``stop`` is set."""
    queue = services.store.letters
    while not stop.is_set():
        try:
            row = queue.claim(stale_after(services))
        except StoreUnavailable as exc:  # the database is down: no traceback each time
            log.error("claiming a letter failed: the store is unavailable (%s)", exc)
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
    """``count`` (default ``settings.ocr_workers``) workers in threads, until ``stop``.

    Meanwhile this thread queues any letter left without its OCR job
    (``requeue_orphans``): at start, then every ``ORPHAN_SWEEP``.
    """
    threads = [
        threading.Thread(target=work, args=(services, stop), name=f"ocr-{index}", daemon=True)
        for index in range(count or services.settings.ocr_workers)
    ]
    for thread in threads:
        thread.start()
    log.info("%d OCR worker(s) started", len(threads))
    while True:
        _sweep_orphans(services)
        if stop.wait(ORPHAN_SWEEP.total_seconds()):
            break
    for thread in threads:
        thread.join()


def _sweep_orphans(services: Services) -> None:
    try:
        requeue_orphans(services, ORPHAN_GRACE)
    except Exception:  # the next sweep tries again; the workers go on meanwhile
        log.exception("looking for letters without an OCR job failed")
