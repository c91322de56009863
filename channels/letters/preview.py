"""``normalize_scan_file``: the complaint a scan would become, without storing anything.

Used by ``intake normalize FILE`` for scans: the same checks and the same
OCR job as the worker, then the normalizer pipeline and the worker's review
step (``with_ocr_review``: needs_review, the low-confidence subject, each
attachment's OCR text and confidence); the id and reference are drawn for
the preview only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from channels.letters.intake import scan_limits
from channels.letters.worker import with_ocr_review
from config.settings import Settings
from gateway.store.blobs import sha256_hex, unstored_evidence
from normalizer.assemble import assemble_message
from normalizer.contract import Attachment, Channel, ComplaintMessage
from normalizer.draft import ComplaintDraft
from normalizer.ocr import inspect_scan, run_ocr
from normalizer.ocr.job import ScanFile
from normalizer.pipeline import normalize, pipeline_context
from normalizer.reference import new_reference


def normalize_scan_file(settings: Settings, path: Path) -> ComplaintMessage:
    """OCR ``path`` (PDF, TIFF, JPEG, PNG) and normalize it.

    Raises ``ScanRejected`` (the file is refused) or ``OcrFailed``.
    """
    data = path.read_bytes()
    limits = scan_limits(settings)
    info = inspect_scan(data, path.name, limits)
    result = run_ocr([ScanFile(path.resolve(), info.kind, info.pages)], limits)
    now = datetime.now(UTC)
    draft = ComplaintDraft(channel=Channel.LETTER, received_at=now, body=result.text)
    normalize(draft, pipeline_context(settings))
    evidence = unstored_evidence(data, info.mime, upload_id=f"sha256:{sha256_hex(data)}")
    attachment = Attachment(
        name=path.name,
        content_type=info.mime,
        size=len(data),
        sha256=evidence.sha256,
        stored_at=evidence.stored_at,
    )
    message = assemble_message(
        draft,
        complaint_id=str(uuid.uuid4()),
        reference=new_reference(),
        evidence=evidence,
        attachments=[attachment],
        processed_at=now,
    )
    reviewed, _ = with_ocr_review(message, [info.pages], result, settings.ocr_review_confidence)
    return reviewed
