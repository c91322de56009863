"""Page images: open with Pillow under a pixel cap, bring to ~300 dpi, straighten.

Pillow's decompression-bomb guard is set to the configured pixel limit and
its warning made an error, so a 50,000 x 50,000 PNG is refused from its
header, before a byte of it is decoded. Deskew uses a projection profile:
the angle at which text lines give the sharpest row histogram.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageChops, ImageFile, ImageFilter, ImageOps

from normalizer.errors import InputRejected

TARGET_DPI = 300
# Long side of an A4 page at TARGET_DPI; used when a file carries no resolution.
A4_LONG_SIDE = 3508
# Short texts (a single line, a small crop) read better a little larger.
MIN_LONG_SIDE = 1200
SKEW_LIMIT = 6.0
SKEW_MIN = 0.25
# Clean scans measure under 0.01, speckled ones 0.2 and more.
SPECKLE_THRESHOLD = 0.05
_PROFILE_SIDE = 900


class ImageRefused(InputRejected):
    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def guard_pixels(max_pixels: int) -> None:
    """Make Pillow refuse, from the header, any image over ``max_pixels``."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def open_frames(path: Path, max_pages: int, max_pixels: int) -> Iterator[Image.Image]:
    """Every page of an image file (TIFF may hold several), checked before decoding."""
    guard_pixels(max_pixels)
    with decoding(max_pixels):
        image = Image.open(path)
    with image:
        with decoding(max_pixels):
            count = getattr(image, "n_frames", 1)
        if count > max_pages:
            raise ImageRefused("too_many_pages", pages=count, limit=max_pages)
        for index in range(count):
            with decoding(max_pixels):
                frame = _frame(image, index, max_pixels)
            yield frame


def _frame(image: Image.Image, index: int, max_pixels: int) -> Image.Image:
    image.seek(index)
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise ImageRefused("too_many_pixels", pixels=pixels, limit=max_pixels)
    frame = image.copy()
    frame.load()
    return frame


@contextmanager
def decoding(max_pixels: int) -> Iterator[None]:
    """Whatever Pillow raises on the file's bytes is the file's fault: a refusal.

    A truncated multi-page TIFF, for one, fails in ``n_frames`` with a
    ``TypeError``; such errors are the file's, not a bug of ours (only the
    decoding calls run in here). ``MemoryError`` stays itself: the sandbox
    reports it as a file too costly to read.
    """
    try:
        yield
    except (ImageRefused, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"(\d+) pixels", str(exc))
        raise ImageRefused(
            "too_many_pixels", pixels=found.group(1) if found else "?", limit=max_pixels
        ) from None
    except Exception as exc:
        raise ImageRefused("unreadable", detail=f"{type(exc).__name__}: {exc}"[:200]) from None


def to_gray(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P"):
        background = Image.new("RGB", image.size, "white")
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    return image.convert("L")


def normalize_resolution(image: Image.Image, dpi: float | None) -> Image.Image:
    """Scale to about TARGET_DPI: tesseract is tuned for it, and 600 dpi only costs time."""
    long_side = max(image.size)
    if dpi and dpi > 0:
        factor = TARGET_DPI / dpi
    elif long_side > A4_LONG_SIDE * 1.15:
        factor = A4_LONG_SIDE / long_side
    else:
        factor = 1.0
    if long_side * factor < MIN_LONG_SIDE:
        factor = min(MIN_LONG_SIDE / long_side, 3.0)
    if 0.9 < factor < 1.1:
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def speckle_ratio(image: Image.Image) -> float:
    """Share of ink pixels that stand alone (no inked neighbour): scanner noise, not text."""
    ink = image.point(lambda v: 255 if v < 128 else 0)
    crowd = ink.filter(ImageFilter.Kernel((3, 3), [1] * 9, scale=9))
    alone = ImageChops.multiply(ink, crowd.point(lambda v: 255 if v < 40 else 0))
    return alone.histogram()[255] / max(ink.histogram()[255], 1)


def despeckle(image: Image.Image) -> Image.Image:
    """A 3x3 median on speckled pages only: tesseract reads speckle as dots and diacritics,
    but on a clean page the median would erase real dots of small Arabic text."""
    if speckle_ratio(image) < SPECKLE_THRESHOLD:
        return image
    return image.filter(ImageFilter.MedianFilter(3))


def _profile_score(ink: Image.Image, angle: float) -> float:
    turned = ink.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=0)
    rows = turned.resize((1, turned.height), Image.Resampling.BOX).tobytes()
    return float(sum((a - b) ** 2 for a, b in itertools.pairwise(rows)))


def estimate_skew(image: Image.Image) -> float:
    """Degrees to rotate (counter-clockwise) so text lines become horizontal."""
    scale = _PROFILE_SIDE / max(image.size)
    small = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BOX,
    )
    ink = ImageOps.invert(ImageOps.autocontrast(small)).point(lambda v: 255 if v > 110 else 0)
    coarse: list[float] = [step / 2 for step in range(-12, 13)]
    best = max(coarse, key=lambda a: _profile_score(ink, a))
    fine: list[float] = [best + step / 10 for step in range(-5, 6)]
    return round(float(max(fine, key=lambda a: _profile_score(ink, a))), 2)


def deskew(image: Image.Image) -> tuple[Image.Image, float]:
    angle = estimate_skew(image)
    if abs(angle) < SKEW_MIN or abs(angle) > SKEW_LIMIT:
        return image, 0.0
    turned = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return turned, angle


def thumbnail_png(image: Image.Image, path: Path, width: int = 240) -> None:
    copy = image.copy()
    copy.thumbnail((width, width * 2))
    copy.save(path, format="PNG", optimize=True)
