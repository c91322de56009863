"""Type and safety checks on a scan, before anything decodes it.

Order matters: python-magic reads the first bytes and decides the type (the
file name's extension is only compared with it, and the declared content
type is not trusted at all); then the size cap; for a PDF, its objects
counted in its bytes (``pdf_object_count``: no program started, so a file
built of 150,000 tiny objects is refused for the price of one scan of its
bytes); then a sandboxed inspection
(``job inspect``) reads the structure: page count, pixels per page, PDF
encryption and JavaScript, and decodes every image page once so a truncated
file is refused here rather than in the OCR worker. Whatever the decoders
raise on the file's bytes comes back as a refusal (``unreadable``); only an
exception outside them (exit 70) is our own failure. Refusals are
``ScanRejected`` with a code from ``reasons.json``, whose texts exist in
French, Arabic and English.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import magic

from normalizer.errors import InputRejected
from normalizer.ocr.sandbox import INTERNAL_ERROR, Confine, Limits, SandboxError, run_limited

# Sniffed MIME type -> kind of scan, and the extensions that may carry it.
ACCEPTED: dict[str, tuple[str, frozenset[str]]] = {
    "application/pdf": ("pdf", frozenset({".pdf"})),
    "image/tiff": ("tiff", frozenset({".tif", ".tiff"})),
    "image/jpeg": ("jpeg", frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})),
    "image/png": ("png", frozenset({".png"})),
}
LANGUAGES = ("fr", "ar", "en")
INSPECT_TIMEOUT = 20.0
# The sandboxed process that decodes untrusted files (``python -m`` this module).
CHILD = "normalizer.ocr.child"
# ``12 0 obj``: an object written in the file's body (bounded repeats, so a long
# run of digits or blanks costs linear time), and an object stream's ``/N``, the
# number of objects packed in it (read near each ``/ObjStm``).
_OBJECT = re.compile(
    rb"(?<![0-9])[0-9]{1,10}[\x00\t\n\f\r ]{1,8}[0-9]{1,5}[\x00\t\n\f\r ]{1,8}obj\b"
)
_OBJECT_STREAM = re.compile(rb"/ObjStm\b")
_PACKED = re.compile(rb"/N[\x00\t\n\f\r ]{0,8}([0-9]{1,9})(?![0-9])")
_STREAM_DICT_REACH = 512


@dataclass(frozen=True)
class ScanLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 50
    max_pixels: int = 40_000_000
    timeout: float = 120.0
    memory_mb: int = 1024
    # A PDF with more objects than this is refused before any program reads it:
    # an honest 50-page scan has a few hundred, a born-digital letter a few thousand.
    max_objects: int = 20_000


@dataclass(frozen=True)
class ScanInfo:
    mime: str
    kind: str
    pages: int
    max_pixels: int


@lru_cache(maxsize=1)
def _reasons() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(
        (Path(__file__).with_name("reasons.json")).read_text(encoding="utf-8")
    )
    return data


class ScanRejected(InputRejected):
    """The sender's fault: the file is refused; ``message(lang)`` says why."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        # Which file of a letter was refused, when the caller knows.
        self.file_name: str | None = None
        super().__init__(self.message("en"))

    @property
    def status(self) -> int:
        return int(_reasons()[self.code]["status"])

    def message(self, language: str = "fr") -> str:
        texts = _reasons()[self.code]
        template = texts.get(language) or texts["fr"]
        return str(template.format(**self.params))


def sniff_type(data: bytes) -> str:
    return str(magic.from_buffer(data[:65536], mime=True))


def check_type(data: bytes, filename: str | None) -> tuple[str, str]:
    """(mime, kind) from the bytes; refuses other types and a lying extension."""
    mime = sniff_type(data)
    if mime not in ACCEPTED:
        raise ScanRejected("unsupported_type", found=mime)
    kind, extensions = ACCEPTED[mime]
    suffix = Path(filename or "").suffix.lower()
    if suffix and suffix not in extensions:
        raise ScanRejected("type_mismatch", found=mime, extension=suffix)
    return mime, kind


def inspect_scan(data: bytes, filename: str | None, limits: ScanLimits) -> ScanInfo:
    """All checks on one file; returns what it is or raises ``ScanRejected``."""
    mime, kind = cheap_checks(data, filename, limits)
    return inspect_structure(data, mime, kind, limits)


def cheap_checks(data: bytes, filename: str | None, limits: ScanLimits) -> tuple[str, str]:
    """(mime, kind) after the checks that start no program: size, type, a PDF's objects."""
    if not data:
        raise ScanRejected("empty")
    if len(data) > limits.max_bytes:
        raise ScanRejected("too_large", size=len(data), limit=limits.max_bytes)
    mime, kind = check_type(data, filename)
    if kind == "pdf":
        count = pdf_object_count(data)
        if count > limits.max_objects:
            raise ScanRejected("too_many_objects", count=count, limit=limits.max_objects)
    return mime, kind


def inspect_structure(data: bytes, mime: str, kind: str, limits: ScanLimits) -> ScanInfo:
    """The sandboxed look at a file past ``cheap_checks``: pages, pixels, active content."""
    with tempfile.TemporaryDirectory(prefix="intake-inspect-") as folder:
        path = Path(folder) / f"scan.{kind}"
        path.write_bytes(data)
        report = _inspect_in_sandbox(path, kind, limits)
    if "rejected" in report:
        raise ScanRejected(report["rejected"], **report.get("params", {}))
    return ScanInfo(mime=mime, kind=kind, pages=report["pages"], max_pixels=report["max_pixels"])


def pdf_object_count(data: bytes) -> int:
    """How many objects the PDF declares: those in its body, and those its object streams
    say they pack (``/N``). Read from the bytes alone, in time linear in their size."""
    count = sum(1 for _ in _OBJECT.finditer(data))
    for found in _OBJECT_STREAM.finditer(data):
        start = max(found.start() - _STREAM_DICT_REACH, 0)
        packed = _PACKED.search(data, start, found.end() + _STREAM_DICT_REACH)
        if packed:
            count += int(packed.group(1))
    return count


def _inspect_in_sandbox(path: Path, kind: str, limits: ScanLimits) -> dict[str, Any]:
    spec = {
        "path": str(path),
        "kind": kind,
        "max_pages": limits.max_pages,
        "max_pixels": limits.max_pixels,
    }
    try:
        out = run_limited(
            [sys.executable, "-m", CHILD, "inspect"],
            Limits(timeout=min(INSPECT_TIMEOUT, limits.timeout), memory_mb=limits.memory_mb),
            stdin=json.dumps(spec).encode(),
            # The one file, read-only: nothing else of ours is in its sight.
            confine=Confine(reads=(path,)),
        )
    except SandboxError as exc:
        if exc.returncode == INTERNAL_ERROR:
            raise  # our bug, not the file's fault: the caller answers 503
        if exc.code == "failed":
            raise ScanRejected("unreadable", detail=exc.detail[-200:]) from None
        raise ScanRejected("too_costly", detail=exc.code) from None
    report: dict[str, Any] = json.loads(out)
    return report
