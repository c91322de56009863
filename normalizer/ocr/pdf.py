"""PDF handling: structure (pdfinfo), active content (qpdf), text (pdftotext), pages (pdftoppm).

Runs inside the OCR job process (already sandboxed); each poppler or qpdf
call gets its own timeout too, so one slow page cannot eat the whole job's
budget.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from normalizer.errors import InputRejected
from normalizer.ocr.sandbox import Limits, SandboxError, run_limited_output

POINTS_PER_INCH = 72
RASTER_DPI = 300
# A PDF page whose text layer has at least this many letters or digits is
# taken as real text (a scanner's OCR layer, or a born-digital letter).
MIN_TEXT_LAYER_CHARS = 40
# Names that make a reader run code, start a program or open a file carried
# inside the PDF, as qpdf writes them (escapes such as ``/J#61vaScript`` decoded).
ACTIVE_NAMES = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/Launch",
        "/RichMedia",
        "/XFA",
        # A file carried inside: the name tree, a file specification's streams,
        # an attachment annotation, an action opening an embedded document.
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/EF",
        "/FileAttachment",
        "/GoToE",
    }
)
# Every object of the file, object streams decoded, stream data left out; a
# damaged file qpdf can repair is listed (warnings), one it cannot fails (exit 2).
# An object qpdf could not read (an object stream under a filter it does not
# decode, arrays nested past its limit) is listed as null, its contents
# unknown, and qpdf warns of it; an honest file may list null objects too (an
# explicit null, an object at offset 0), with no such warning.
QPDF_OBJECTS = (
    "qpdf",
    "--json=2",
    "--json-key=qpdf",
    "--json-stream-data=none",
    "--warning-exit-0",
)
# What a dictionary of the listing becomes once checked (JSON's null stays None).
_CHECKED = object()
# qpdf's warnings that an object's content was lost, not merely repaired.
_CONTENT_LOST = re.compile(r"unfilterable stream|deeply nested|error decoding|object stream", re.I)
_PAGE_SIZE = re.compile(r"^Page\s+(\d+)\s+size:\s+([\d.]+) x ([\d.]+) pts", re.MULTILINE)


class PdfRefused(InputRejected):
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
    """The program's output (poppler, qpdf); its failing on the file (exit status) is a refusal.

    Running out of time or memory stays a ``SandboxError``: on a page, the
    OCR marks that page unread and goes on with the next.
    """
    return _output(args, limits)[0]


def _output(args: list[str], limits: Limits) -> tuple[str, str]:
    """``_text``, with the program's warnings (stderr)."""
    try:
        out, err = run_limited_output(args, limits)
    except SandboxError as exc:
        if exc.code != "failed":
            raise
        if "password" in exc.detail.lower() or "encrypt" in exc.detail.lower():
            raise PdfRefused("encrypted_pdf") from None
        raise PdfRefused("unreadable", detail=exc.detail[-200:]) from None
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _structure(args: list[str], limits: Limits) -> str:
    """``_text`` for the file's structure: too slow or too big to describe is a refusal too."""
    return _described(args, limits)[0]


def _described(args: list[str], limits: Limits) -> tuple[str, str]:
    """``_structure`` with the program's warnings."""
    try:
        return _output(args, limits)
    except SandboxError as exc:
        raise PdfRefused("too_costly", detail=exc.code) from None


def pdf_info(path: Path, max_pages: int, limits: Limits) -> PdfInfo:
    """Pages and size; ``PdfRefused`` for encrypted, active-content-bearing or oversized files.

    The page count comes first: a file with thousands of pages is refused
    before qpdf lists its objects.
    """
    summary = _structure(["pdfinfo", str(path)], limits)
    if re.search(r"^Encrypted:\s+yes", summary, re.MULTILINE):
        raise PdfRefused("encrypted_pdf")
    # poppler's own verdict (the document's JavaScript name tree), a second parser's opinion.
    if re.search(r"^JavaScript:\s+yes", summary, re.MULTILINE):
        raise PdfRefused("pdf_javascript")
    found = re.search(r"^Pages:\s+(\d+)", summary, re.MULTILINE)
    pages = int(found.group(1)) if found else 0
    if pages < 1:
        raise PdfRefused("unreadable", detail="no page")
    if pages > max_pages:
        raise PdfRefused("too_many_pages", pages=pages, limit=max_pages)
    refuse_active_content(path, limits)
    sizes = _structure(["pdfinfo", "-f", "1", "-l", str(pages), str(path)], limits)
    scale = RASTER_DPI / POINTS_PER_INCH
    pixels = [int(float(w) * scale * float(h) * scale) for _, w, h in _PAGE_SIZE.findall(sizes)]
    return PdfInfo(pages=pages, max_pixels=max(pixels, default=0))


def refuse_active_content(path: Path, limits: Limits) -> None:
    """``PdfRefused`` when any object of the file names JavaScript, a launch action or the like.

    qpdf parses the file as a reader does: it follows the cross-reference
    table, decodes object streams whatever their filters and predictors, and
    decodes ``#xx`` escapes in names. Every dictionary it lists is checked,
    wherever it sits (an action, an annotation, a stream's dictionary); image
    data is not listed, so its bytes cannot spell a name by chance. A file
    qpdf cannot read, or one holding an object it could not read, is refused
    as unreadable, never let through.
    """
    listing, warnings = _described([*QPDF_OBJECTS, str(path)], limits)
    nulls: list[bool] = []
    try:
        json.loads(listing, object_pairs_hook=lambda pairs: _check_dictionary(pairs, nulls))
    except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
        raise PdfRefused("unreadable", detail="qpdf listing unreadable") from None
    if nulls and _CONTENT_LOST.search(warnings):
        raise PdfRefused("unreadable", detail="an object qpdf could not read")


def _check_dictionary(pairs: list[tuple[str, object]], nulls: list[bool]) -> object:
    """``json.loads`` hook: each dictionary of the listing, innermost first.

    Nothing is kept (each dictionary becomes ``_CHECKED``), so a large
    listing costs its text, not a tree of Python objects. qpdf writes names
    as ``"/Name"`` and strings as ``"u:..."``/``"b:..."``, so a string can
    never pass for a name; ``"value"`` is qpdf's own key for an object.
    """
    found = {key for key, _ in pairs}
    for _, value in pairs:
        found.update(_strings(value))
    if ACTIVE_NAMES & found:
        raise PdfRefused("pdf_javascript")
    if ("value", None) in pairs:
        nulls.append(True)  # an object listed as null: lost only if qpdf warned so
    return _CHECKED


def _strings(value: object) -> list[str]:
    """The strings in a value of the listing (arrays flattened; dictionaries were checked)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [found for item in value for found in _strings(item)]
    return []


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
