"""Attachments described by what their bytes are, not by what the sender claims.

Raw mail -> parse -> walk -> **attachments** -> complaint (scans go to OCR).

The declared Content-Type and the file name are recorded but never trusted:
the type that matters is sniffed from the bytes with libmagic. A scan of a
receipt, a screenshot of a failed transfer or a PDF statement is evidence the
OCR workers must read, so images and PDFs are marked ``needs_ocr``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata
from dataclasses import dataclass, field

from normalizer.email.errors import EmailInternalError

# Types libmagic gives for raster images that OCR cannot use.
_NOT_SCANNABLE = frozenset({"image/svg+xml", "image/svg", "image/vnd.microsoft.icon"})
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")
_MAX_FILENAME = 200


@dataclass(frozen=True)
class ParsedAttachment:
    """One attachment or inline image, with its bytes and what they really are."""

    filename: str | None
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    data: bytes = field(repr=False)
    inline: bool
    content_id: str | None
    needs_ocr: bool


def build_attachment(
    data: bytes,
    filename: str | None,
    declared_type: str,
    inline: bool,
    content_id: str | None,
) -> ParsedAttachment:
    """Describe one part's decoded bytes as an attachment."""
    sniffed = sniff_type(data)
    return ParsedAttachment(
        filename=sanitize_filename(filename),
        declared_type=declared_type,
        sniffed_type=sniffed,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        inline=inline,
        content_id=clean_content_id(content_id),
        needs_ocr=needs_ocr(sniffed, len(data)),
    )


def sniff_type(data: bytes) -> str:
    """The MIME type libmagic reads in ``data`` (``application/x-empty`` when empty)."""
    try:
        # Imported here so a missing libmagic is reported as our fault, not a crash.
        import magic
    except ImportError as error:
        raise EmailInternalError("python-magic / libmagic is not available") from error
    try:
        return str(magic.from_buffer(data, mime=True))
    except magic.MagicException:
        # libmagic gave up on these bytes: that is a fact about the file, not an outage.
        return "application/octet-stream"


def needs_ocr(sniffed_type: str, size: int) -> bool:
    """True for non-empty raster images and PDFs."""
    if size == 0 or sniffed_type in _NOT_SCANNABLE:
        return False
    return sniffed_type.startswith("image/") or sniffed_type == "application/pdf"


def sanitize_filename(name: str | None) -> str | None:
    """A file name safe to show and store: no directories, controls or bidi tricks.

    ``../../etc/passwd`` gives ``passwd``; ``C:\\scans\\recu.pdf`` gives ``recu.pdf``;
    a right-to-left override that would show ``exe.pdf`` as ``fdp.exe`` is removed.
    Arabic names are kept (NFC). An empty result is None.
    """
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    name = "".join(char for char in name if unicodedata.category(char) != "Cc")
    name = _BIDI_CONTROLS.sub("", name)
    name = posixpath.basename(name.replace("\\", "/")).strip().lstrip(".").strip()
    if len(name) > _MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        keep = extension[:20] if dot and stem else ""
        name = name[: _MAX_FILENAME - len(keep) - 1] + ("." + keep if keep else "")
    return name or None


def clean_content_id(value: str | None) -> str | None:
    """A Content-ID without its angle brackets, as ``cid:`` URLs write it."""
    if not value:
        return None
    stripped = value.strip().strip("<>").strip()
    return stripped or None
