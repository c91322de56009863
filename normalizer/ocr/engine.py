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
# read: a file built to be slow costs a few page budgets, not one per page, and
# the letter goes to a person, who reads it on the scans.
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
    such pages the rest are skipped.
    """
    limits = Limits(timeout=spec["timeout"], memory_mb=spec["memory_mb"])
    workdir = Path(spec["workdir"])
    thumbnail = Path(spec["thumbnail"]) if spec.get("thumbnail") else None
    pages: list[PageResult] = []
    failed = 0
    for item in spec["files"]:
        for load in _pages(Path(item["path"]), item["kind"], spec, workdir, limits):
            index = len(pages)
            if failed >= MAX_FAILED_PAGES:
                pages.append(_unread(index, "skipped"))
                continue
            page_limits = limits.until(time.monotonic() + limits.timeout)
            try:
                pages.append(_read_page(load, index, workdir, page_limits, thumbnail))
            except SandboxError as exc:
                if exc.code not in PAGE_FAILURES:
                    raise
                pages.append(_unread(index, exc.code))
                failed += 1
            except MemoryError:
                pages.append(_unread(index, "memory"))
                failed += 1
    return DocumentResult(pages=pages)


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
    info = pdf.pdf_info(path, spec["max_pages"], limits)
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
