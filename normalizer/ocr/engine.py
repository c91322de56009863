"""The OCR pipeline for one document, as run inside the sandboxed job process.

Per page: a PDF page with a real text layer uses it; otherwise the page is
rendered (PDF) or decoded (image), brought to ~300 dpi in grey, turned
upright (OSD), straightened (deskew), and read with the language set of its
script. ``inspect`` is the cheap pass the channels run before accepting a
file: structure, limits, and one full decode of every image page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from normalizer.ocr import images, pdf, tesseract
from normalizer.ocr.result import DocumentResult, PageResult
from normalizer.ocr.sandbox import Limits

REFUSALS = (images.ImageRefused, pdf.PdfRefused)


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
    """Every page of every file in ``spec["files"]``, in order."""
    limits = Limits(timeout=spec["timeout"], memory_mb=spec["memory_mb"])
    workdir = Path(spec["workdir"])
    thumbnail = Path(spec["thumbnail"]) if spec.get("thumbnail") else None
    pages: list[PageResult] = []
    for item in spec["files"]:
        path, kind = Path(item["path"]), item["kind"]
        for image, text, dpi in _pages(path, kind, spec, workdir, limits):
            index = len(pages)
            if text is not None:
                pages.append(PageResult(index, text, 100.0, "text-layer"))
                continue
            assert image is not None
            prepared, page = _read_image(image, dpi, index, workdir, limits)
            if thumbnail is not None and not thumbnail.exists():
                images.thumbnail_png(prepared, thumbnail)
            pages.append(page)
    return DocumentResult(pages=pages)


def _pages(path: Path, kind: str, spec: dict[str, Any], workdir: Path, limits: Limits) -> Any:
    """Yield (image, text_layer, dpi) per page; exactly one of image and text is set."""
    if kind != "pdf":
        for frame in images.open_frames(path, spec["max_pages"], spec["max_pixels"]):
            dpi = frame.info.get("dpi", (0, 0))[0] or None
            yield frame, None, float(dpi) if dpi else None
        return
    info = pdf.pdf_info(path, spec["max_pages"], limits)
    for number in range(1, info.pages + 1):
        text = pdf.text_layer(path, number, limits)
        if text is not None:
            yield None, text, None
            continue
        rendered = pdf.rasterize(path, number, workdir / f"{path.stem}-p{number}", limits)
        images.guard_pixels(spec["max_pixels"])
        with Image.open(rendered) as page:
            page.load()
            yield page.copy(), None, float(pdf.RASTER_DPI)


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
    )
    return straight, page
