"""How a letter is shown to its uploader: the same view for the API and the upload page.

``Store.letters`` (the letter row, its OCR result) -> **here** (status,
pages, excerpt, a refusal in the reader's language) -> ``api`` / ``page``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, UploadFile

from channels.letters.intake import LetterFile
from gateway.store.letters import LetterRow
from normalizer.ocr import ScanRejected

REASON_LANGUAGES = ("fr", "ar", "en")
EXCERPT_LINES = 8


def reason_language(request: Request, default: str = "fr") -> str:
    """The first of French, Arabic, English that ``Accept-Language`` names."""
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in REASON_LANGUAGES:
            return tag
    return default


async def read_files(uploads: list[UploadFile], max_bytes: int) -> list[LetterFile]:
    """The uploaded files, each read up to the cap (a larger one is refused, not truncated)."""
    files = []
    for upload in uploads:
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            exc = ScanRejected("too_large", size=f"> {max_bytes}", limit=max_bytes)
            exc.file_name = upload.filename
            raise exc
        files.append(LetterFile(upload.filename, data, upload.content_type))
    return files


def excerpt(text: str, lines: int = EXCERPT_LINES) -> str:
    kept = [line for line in text.splitlines() if line.strip()][:lines]
    return "\n".join(kept)


def letter_view(row: LetterRow, language: str, *, with_text: bool = False) -> dict[str, Any]:
    result = row.result or {}
    pages = [
        {
            "page": page["index"] + 1,
            "confidence": page["confidence"],
            "method": page["method"],
            "script": page.get("script"),
            "languages": page.get("languages"),
            "rotation": page.get("rotation", 0),
            "skew": page.get("skew", 0.0),
            # A blank page (back of a duplex scan) or one left unread ("timeout",
            # "memory", "skipped"): not a bare 0 % confidence.
            "blank": page.get("blank", False),
            "error": page.get("error"),
        }
        for page in result.get("pages", [])
    ]
    text = "\n\n".join(page["text"] for page in result.get("pages", []) if page["text"].strip())
    view: dict[str, Any] = {
        "id": row.id,
        "reference": row.reference,
        "status": row.status,
        "pages": row.pages,
        "language": row.language if row.status in ("done", "failed") else None,
        "review": bool(result.get("review")),
        "low_confidence_pages": result.get("low_confidence_pages", []),
        "page_results": pages,
        "excerpt": excerpt(text),
        "error": None,
    }
    if with_text:
        view["text"] = text
    if row.error_code:
        view["error"] = {"code": row.error_code, "message": _failure_text(row, language)}
    return view


def _failure_text(row: LetterRow, language: str) -> str:
    if language == "fr" or not row.error_code:
        return row.error or ""
    from normalizer.ocr.job import OcrFailed

    return OcrFailed(row.error_code, row.error or "", params={"detail": ""}).reason(language)
