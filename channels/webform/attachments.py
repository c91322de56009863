"""Checks on the files a customer attaches to the web form: the scanned letters' own.

form POST -> **each file checked here** -> ``AttachmentDraft`` -> hand off.

The checks are ``normalizer.ocr.inspect_scan``, the ones the mailroom's
scans go through: the type sniffed from the bytes (PDF, JPEG, PNG, TIFF; an
extension that lies is refused), the size cap, then a sandboxed look at the
structure (pages, pixels per page, encrypted or scripted PDF, a truncated
image). Here only its refusal codes are turned into the form's own error
codes, whose sentences exist in the four languages of the page.
"""

from __future__ import annotations

from normalizer.errors import InputRejected
from normalizer.ocr import ScanLimits, ScanRejected, inspect_scan

ACCEPTED_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/tiff"})
# Refusal code of the scan checks -> error code of the form (texts/<lang>.json).
FORM_ERRORS: dict[str, str] = {
    "unsupported_type": "file_type",
    "type_mismatch": "file_type",
    "too_large": "file_too_large",
    "too_many_pages": "file_too_many_pages",
    "too_many_pixels": "file_too_many_pixels",
    "encrypted_pdf": "file_protected",
    "pdf_javascript": "file_unsafe",
    "unreadable": "file_unreadable",
    "too_costly": "file_unreadable",
    "empty": "file_unreadable",
}


class FileRefused(InputRejected, ValueError):
    """A file the customer must replace; ``code`` names the texts entry."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def check_file(name: str, data: bytes, limits: ScanLimits) -> str:
    """The sniffed type of an acceptable file, or ``FileRefused`` saying why not."""
    try:
        return inspect_scan(data, name, limits).mime
    except ScanRejected as exc:
        code = FORM_ERRORS.get(exc.code, "file_unreadable")
        raise FileRefused(code, max_mb=megabytes(limits.max_bytes), max=limits.max_pages) from None


def megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return f"{value:.0f}" if value >= 1 else f"{value:.1f}"
