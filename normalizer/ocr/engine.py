"""The OCR pipeline for one document, as run inside the sandboxed job process.

Per page, within the page's own time budget: a PDF page with a real text
layer uses it; otherwise the page is rendered (PDF) or decoded (image),
brought to ~300 dpi in grey, turned upright (OSD), straightened (deskew),
and read with the language set of its script. A page with no words and
almost no ink is marked blank (the back of a duplex scan). ``inspect`` is
the cheap pass the channels run before accepting a file: structure, limits,
and one full decode of every image page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from normalizer.ocr import images, pdf, tesseract
from normalizer.ocr.result import DocumentResult, PageResult
from normalizer.ocr.sandbox import Limits, SandboxError

REFUSALS = (images.ImageRefused, pdf.PdfRefused)
# How a page can run out of its own limits without failing the letter.
PAGE_FAILURES = ("timeout", "memory")
# After this many pages ran out of their limits, the rest of the letter is not
# read, and the letter goes to a person, who reads it on the scans: pages built
# to go over their budget cost two budgets, not one per page. Pages that run
# just under it are bounded by the letter's own time (``spec["letter_seconds"]``).
MAX_FAILED_PAGES = 2
# Grey level under which a pixel is ink, and the share of ink under which a page
# with no words is blank. Measured at 300 dpi after despeckling: a blank page
# (even speckled) 0 %, a page with one short word 0.04 %, one line 0.2 %, a
# letter 2 %.
INK_LEVEL = 128
BLANK_INK_SHARE = 0.0003

LoadedPage = tuple[Image.Image | None, str | None, float | None]
PageLoader = Callable[[Limits], LoadedPage]


def inspect(spec: dict[str, Any]) -> dict[str, Any]:
    """{"pages", "max_pixels"} or {"rejected": code, "params": {...}}."""
    path, kind = Path(spec["path"]), spec["kind"]
    limits = Limits(timeout=spec.get("timeout", 20.0), memory_mb=spec.get("memory_mb", 1024))
    try:
        if kind == "pdf":
            info = pdf.pdf_info(path, spec["max_pages"], limits)
            pages, largest = info.pages, info.max_pixels
            if largest > spec["max_pixels"]:
                raise images.ImageRefused(
                    "too_many_pixels", pixels=largest, limit=spec["max_pixels"]
                )
        else:
            sizes = [
                f.width * f.height
                for f in images.open_frames(path, spec["max_pages"], spec["max_pixels"])
            ]
            pages, largest = len(sizes), max(sizes, default=0)
    except REFUSALS as exc:
        return {"rejected": exc.code, "params": exc.params}
    return {"pages": pages, "max_pixels": largest}


def ocr_document(spec: dict[str, Any]) -> DocumentResult:
    """Every page of every file in ``spec["files"]``, in order, each within its own budget.

    ``spec["timeout"]`` is one page's budget, shared by that page's poppler
    and tesseract calls. A page that runs out of time or memory is kept as
    unread (``error``) and the next page is read; after ``MAX_FAILED_PAGES``
    such pages, or once the pages have spent ``spec["letter_seconds"]`` (if
    given) in all, the rest are skipped.
    """
    limits = Limits(timeout=spec["timeout"], memory_mb=spec["memory_mb"])
    workdir = Path(spec["workdir"])
    thumbnail = Path(spec["thumbnail"]) if spec.get("thumbnail") else None
    reading_left = spec.get("letter_seconds", math.inf)
    pages: list[PageResult] = []
    failed = 0
    for item in spec["files"]:
        for load in _pages(Path(item["path"]), item["kind"], spec, workdir, limits):
            index = len(pages)
            if failed >= MAX_FAILED_PAGES or reading_left <= 0:
                pages.append(_unread(index, "skipped"))
                continue
            started = time.monotonic()
            page_limits = limits.until(started + min(limits.timeout, reading_left))
            page = _read_or_unread(load, index, workdir, page_limits, thumbnail)
            reading_left -= time.monotonic() - started
            failed += page.error is not None
            pages.append(page)
    return DocumentResult(pages=pages)


def _read_or_unread(
    load: PageLoader, index: int, workdir: Path, limits: Limits, thumbnail: Path | None
) -> PageResult:
    """The page read, or left unread with the limit it ran out of."""
    try:
        return _read_page(load, index, workdir, limits, thumbnail)
    except SandboxError as exc:
        if exc.code not in PAGE_FAILURES:
            raise
        return _unread(index, exc.code)
    except MemoryError:
        return _unread(index, "memory")


def _unread(index: int, error: str) -> PageResult:
    return PageResult(index, "", 0.0, "ocr", error=error)


def _read_page(
    load: PageLoader, index: int, workdir: Path, limits: Limits, thumbnail: Path | None
) -> PageResult:
    image, text, dpi = load(limits)
    if text is not None:
        return PageResult(index, text, 100.0, "text-layer")
    assert image is not None
    prepared, page = _read_image(image, dpi, index, workdir, limits)
    if thumbnail is not None and not thumbnail.exists():
        images.thumbnail_png(prepared, thumbnail)
    return page


def _pages(
    path: Path, kind: str, spec: dict[str, Any], workdir: Path, limits: Limits
) -> Iterator[PageLoader]:
    """One loader per page, in order; a loader gives (image, text_layer, dpi), one of the
    first two set. PDF pages are rendered only when their loader runs, within the page's
    budget (and not at all for skipped pages)."""
    if kind != "pdf":
        for frame in images.open_frames(path, spec["max_pages"], spec["max_pixels"]):
            dpi = frame.info.get("dpi", (0, 0))[0] or None
            yield partial(_decoded, frame, float(dpi) if dpi else None)
        return
    # Opening the file shares one deadline (``spec["opening_seconds"]``) over all its
    # calls, so that the job's own time (``job.letter_timeout``) always covers it.
    opening = spec.get("opening_seconds")
    info_limits = limits if opening is None else limits.until(time.monotonic() + opening)
    info = pdf.pdf_info(path, spec["max_pages"], info_limits)
    for number in range(1, info.pages + 1):
        yield partial(_pdf_page, path, number, spec["max_pixels"], workdir)


def _decoded(frame: Image.Image, dpi: float | None, limits: Limits) -> LoadedPage:
    return frame, None, dpi


def _pdf_page(
    path: Path, number: int, max_pixels: int, workdir: Path, limits: Limits
) -> LoadedPage:
    text = pdf.text_layer(path, number, limits)
    if text is not None:
        return None, text, None
    rendered = pdf.rasterize(path, number, workdir / f"{path.stem}-p{number}", limits)
    images.guard_pixels(max_pixels)
    # What poppler wrote is decoded like any scan: a bad file is a refusal.
    with images.decoding(max_pixels), Image.open(rendered) as page:
        page.load()
        return page.copy(), None, float(pdf.RASTER_DPI)


def ink_share(image: Image.Image) -> float:
    """Share of dark pixels on a grey page."""
    histogram = image.histogram()
    return sum(histogram[:INK_LEVEL]) / max(image.width * image.height, 1)


def _read_image(
    image: Image.Image, dpi: float | None, index: int, workdir: Path, limits: Limits
) -> tuple[Image.Image, PageResult]:
    gray = images.despeckle(images.normalize_resolution(images.to_gray(image), dpi))
    source = workdir / f"page-{index:03d}.png"
    gray.save(source, dpi=(images.TARGET_DPI, images.TARGET_DPI))
    orientation = tesseract.detect_orientation(source, limits)
    if orientation.rotate:
        # OSD says how far to turn clockwise; Pillow turns counter-clockwise.
        gray = gray.rotate(-orientation.rotate, expand=True, fillcolor=255)
    straight, skew = images.deskew(gray)
    if orientation.rotate or skew:
        straight.save(source, dpi=(images.TARGET_DPI, images.TARGET_DPI))
    reading, script = tesseract.read_page(source, orientation.script, limits)
    page = PageResult(
        index=index,
        text=reading.text,
        confidence=reading.confidence,
        method="ocr",
        script=script,
        languages=reading.languages,
        rotation=orientation.rotate,
        skew=skew,
        blank=not reading.text and ink_share(gray) < BLANK_INK_SHARE,
    )
    return straight, page
