"""PDF handling with poppler: structure (pdfinfo), text layer (pdftotext), pages (pdftoppm).

Runs inside the OCR job process (already sandboxed); each poppler call gets
its own timeout too, so one slow page cannot eat the whole job's budget.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from normalizer.ocr.sandbox import Limits, SandboxError, run_limited

POINTS_PER_INCH = 72
RASTER_DPI = 300
# A PDF page whose text layer has at least this many letters or digits is
# taken as real text (a scanner's OCR layer, or a born-digital letter).
MIN_TEXT_LAYER_CHARS = 40
# Names of PDF objects that run code or open other things when the file is opened.
_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|RichMedia|XFA)\b")
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
    return run_limited(args, limits).decode("utf-8", "replace")


def pdf_info(path: Path, max_pages: int, limits: Limits) -> PdfInfo:
    """Pages and size; ``PdfRefused`` for encrypted, JavaScript-bearing or oversized files."""
    raw = path.read_bytes()
    if b"/Encrypt" in raw:
        raise PdfRefused("encrypted_pdf")
    if _ACTIVE.search(raw):
        raise PdfRefused("pdf_javascript")
    try:
        summary = _text(["pdfinfo", str(path)], limits)
    except SandboxError as exc:
        if "password" in exc.detail.lower() or "encrypt" in exc.detail.lower():
            raise PdfRefused("encrypted_pdf") from None
        raise PdfRefused("unreadable", detail=exc.detail[-200:]) from None
    if re.search(r"^Encrypted:\s+yes", summary, re.MULTILINE):
        raise PdfRefused("encrypted_pdf")
    found = re.search(r"^Pages:\s+(\d+)", summary, re.MULTILINE)
    pages = int(found.group(1)) if found else 0
    if pages < 1:
        raise PdfRefused("unreadable", detail="no page")
    if pages > max_pages:
        raise PdfRefused("too_many_pages", pages=pages, limit=max_pages)
    # JavaScript can hide in compressed object streams: ask poppler as well.
    if _text(["pdfinfo", "-js", str(path)], limits).count("\n") > summary.count("\n"):
        raise PdfRefused("pdf_javascript")
    sizes = _text(["pdfinfo", "-f", "1", "-l", str(pages), str(path)], limits)
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
    run_limited(
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
