"""One web form post -> its ``RawInput``: shared by the form's edge and its replay.

``routes`` (a post that passed the guards and the checks) and ``replay`` (a
quarantined post checked again) both build the evidence here, so the dedup
key (the form token's nonce and the content) is written once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from channels.webform.form import Submission, content_hash
from config.settings import Settings
from normalizer.contract import Channel
from normalizer.draft import RawInput
from normalizer.ocr import ScanLimits


def form_limits(settings: Settings) -> ScanLimits:
    """What an attachment of the form may be: the letters' checks, with the form's size."""
    return ScanLimits(
        max_bytes=min(settings.webform_max_attachment_bytes, settings.letter_max_bytes),
        max_pages=settings.letter_max_pages,
        max_pixels=settings.letter_max_pixels,
        timeout=settings.ocr_timeout,
        memory_mb=settings.ocr_memory_mb,
    )


def form_input(
    body: bytes,
    content_type: str,
    nonce: str,
    sub: Submission,
    *,
    received_at: datetime,
    source_ids: dict[str, Any],
) -> RawInput:
    """The evidence of one post; one post of one form token is one complaint."""
    return RawInput(
        channel=Channel.WEBFORM,
        data=body,
        content_type=content_type,
        received_at=received_at,
        dedup_key=f"webform:{nonce}:{content_hash(sub)}",
        source_ids=source_ids,
    )
