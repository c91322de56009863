"""PDF handling with poppler: structure (pdfinfo), text layer (pdftotext), pages (pdftoppm).

Runs inside the OCR job process (already sandboxed); each poppler call gets
its own timeout too, so one slow page cannot eat the whole job's budget.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from normalizer.ocr.sandbox import Limits, SandboxError, run_limited

POINTS_PER_INCH = 72
RASTER_DPI = 300
# A PDF page whose text layer has at least this many letters or digits is
# taken as real text (a scanner's OCR layer, or a born-digital letter).
MIN_TEXT_LAYER_CHARS = 40
# Names of PDF objects that run code or open other things when the file is opened.
ACTIVE_NAMES = frozenset({b"JavaScript", b"JS", b"Launch", b"EmbeddedFile", b"RichMedia", b"XFA"})
# A name: a slash, then anything up to a delimiter or white space (ISO 32000-1, 7.3.5).
_NAME = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# The dictionary in front of a stream (nested dictionaries allowed, bounded).
_STREAM_START = re.compile(rb"\bobj\s*<<(.{0,4096}?)>>\s*stream\r?\n", re.DOTALL)
_OBJECT_HEADER = re.compile(rb"\d+\s+\d+\s+obj\b")
# Object streams are small; this bounds what one may inflate to while scanning.
MAX_OBJECT_STREAM = 16 * 1024 * 1024
_PAGE_SIZE = re.compile(r"^Page\s+(\d+)\s+size:\s+([\d.]+) x ([\d.]+) pts", re.MULTILINE)


class PdfRefused(Exception):
    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    # Largest page in pixels once rendered at RASTER_DPI.
    max_pixels: int


def _text(args: list[str], limits: Limits) -> str:
    """poppler's output; poppler failing on the file (its exit status) is a refusal.

    Running out of time or memory stays a ``SandboxError``: on a page, the
    OCR marks that page unread and goes on with the next.
    """
    try:
        return run_limited(args, limits).decode("utf-8", "replace")
    except SandboxError as exc:
        if exc.code != "failed":
            raise
        if "password" in exc.detail.lower() or "encrypt" in exc.detail.lower():
            raise PdfRefused("encrypted_pdf") from None
        raise PdfRefused("unreadable", detail=exc.detail[-200:]) from None


def _structure(args: list[str], limits: Limits) -> str:
    """``_text`` for the file's structure: too slow or too big to describe is a refusal too."""
    try:
        return _text(args, limits)
    except SandboxError as exc:
        raise PdfRefused("too_costly", detail=exc.code) from None


def names(data: bytes) -> list[bytes]:
    """Every name written in ``data``, in order, ``#xx`` escapes decoded (``/J#61vaScript``)."""
    return [
        _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), found)
        for found in _NAME.findall(data)
    ]


def readable_parts(raw: bytes) -> Iterator[bytes]:
    """The file as a parser sees objects: everything but stream data, object streams decoded.

    Stream data (a scan's JPEG, say) is skipped: its random bytes spell
    ``/JS`` by chance often enough to refuse one 5 MB scan in ten. It is
    read all the same when it holds an object header (``N G obj``), where
    an object hidden inside it, reached through the cross-reference table,
    would start.
    """
    position = 0
    while (start := _STREAM_START.search(raw, position)) is not None:
        yield raw[position : start.end()]
        end = raw.find(b"endstream", start.end())
        end = len(raw) if end < 0 else end
        data = raw[start.end() : end]
        dictionary = names(start.group(1).rsplit(b"obj", 1)[-1])
        if b"ObjStm" in dictionary:
            # Decoded to the end of its own data, not to an ``endstream`` it may hold.
            filters = [name for name in dictionary if name.endswith(b"Decode")]
            yield _decoded(memoryview(raw)[start.end() :], filters)
        if b"ObjStm" in dictionary or _OBJECT_HEADER.search(data):
            yield data
        position = end
    yield raw[position:]


def _inflate(data: bytes | memoryview) -> bytes:
    return zlib.decompressobj().decompress(data, MAX_OBJECT_STREAM)


def _unhex(data: bytes | memoryview) -> bytes:
    digits = b"".join(bytes(data[: 2 * MAX_OBJECT_STREAM]).split(b">", 1)[0].split())
    return binascii.unhexlify(digits + b"0" * (len(digits) % 2))


def _un85(data: bytes | memoryview) -> bytes:
    return base64.a85decode(bytes(data[: 2 * MAX_OBJECT_STREAM]).split(b"~>", 1)[0])


# The filters object streams are written with, in practice.
_DECODERS: dict[bytes, Callable[[bytes | memoryview], bytes]] = {
    b"FlateDecode": _inflate,
    b"ASCIIHexDecode": _unhex,
    b"ASCII85Decode": _un85,
}


def _decoded(data: memoryview, filters: list[bytes]) -> bytes:
    """An object stream's objects through its filters (bounded); empty when we cannot.

    Then its raw bytes are still scanned, and poppler judges the file after.
    """
    out: bytes | memoryview = data
    try:
        for name in filters:
            out = _DECODERS[name](out)
    except (KeyError, ValueError, zlib.error):  # binascii.Error is a ValueError
        return b""
    return bytes(out)


def written_names(raw: bytes) -> set[bytes]:
    """Every name the file's objects use, escapes decoded, object streams included."""
    return {name for part in readable_parts(raw) for name in names(part)}


def pdf_info(path: Path, max_pages: int, limits: Limits) -> PdfInfo:
    """Pages and size; ``PdfRefused`` for encrypted, JavaScript-bearing or oversized files."""
    written = written_names(path.read_bytes())
    if b"Encrypt" in written:
        raise PdfRefused("encrypted_pdf")
    if ACTIVE_NAMES & written:
        raise PdfRefused("pdf_javascript")
    summary = _structure(["pdfinfo", str(path)], limits)
    if re.search(r"^Encrypted:\s+yes", summary, re.MULTILINE):
        raise PdfRefused("encrypted_pdf")
    # poppler resolves what a byte scan cannot (other stream filters, the name tree).
    if re.search(r"^JavaScript:\s+yes", summary, re.MULTILINE):
        raise PdfRefused("pdf_javascript")
    found = re.search(r"^Pages:\s+(\d+)", summary, re.MULTILINE)
    pages = int(found.group(1)) if found else 0
    if pages < 1:
        raise PdfRefused("unreadable", detail="no page")
    if pages > max_pages:
        raise PdfRefused("too_many_pages", pages=pages, limit=max_pages)
    sizes = _structure(["pdfinfo", "-f", "1", "-l", str(pages), str(path)], limits)
    scale = RASTER_DPI / POINTS_PER_INCH
    pixels = [int(float(w) * scale * float(h) * scale) for _, w, h in _PAGE_SIZE.findall(sizes)]
    return PdfInfo(pages=pages, max_pixels=max(pixels, default=0))


def text_layer(path: Path, page: int, limits: Limits) -> str | None:
    """The page's own text, if it has a real text layer (1-based page)."""
    text = _text(
        ["pdftotext", "-layout", "-enc", "UTF-8", "-f", str(page), "-l", str(page), str(path), "-"],
        limits,
    )
    text = unicodedata.normalize("NFC", text.replace("\f", "")).strip()
    meaningful = sum(1 for char in text if char.isalnum())
    return text if meaningful >= MIN_TEXT_LAYER_CHARS else None


def rasterize(path: Path, page: int, out_prefix: Path, limits: Limits) -> Path:
    """Render one page (1-based) to an 8-bit grey PNG at RASTER_DPI."""
    _text(
        [
            "pdftoppm",
            "-r",
            str(RASTER_DPI),
            "-gray",
            "-png",
            "-singlefile",
            "-f",
            str(page),
            "-l",
            str(page),
            str(path),
            str(out_prefix),
        ],
        limits,
    )
    return out_prefix.with_suffix(".png")
