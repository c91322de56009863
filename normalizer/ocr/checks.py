"""Type and safety checks on a scan, before anything decodes it.

Order matters: python-magic reads the first bytes and decides the type (the
file name's extension is only compared with it, and the declared content
type is not trusted at all); then the size cap; then a sandboxed inspection
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
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import magic

from normalizer.errors import InputRejected
from normalizer.ocr.sandbox import INTERNAL_ERROR, Limits, SandboxError, run_limited

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


@dataclass(frozen=True)
class ScanLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 50
    max_pixels: int = 40_000_000
    timeout: float = 120.0
    memory_mb: int = 1024


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
    if not data:
        raise ScanRejected("empty")
    if len(data) > limits.max_bytes:
        raise ScanRejected("too_large", size=len(data), limit=limits.max_bytes)
    mime, kind = check_type(data, filename)
    with tempfile.TemporaryDirectory(prefix="intake-inspect-") as folder:
        path = Path(folder) / f"scan.{kind}"
        path.write_bytes(data)
        report = _inspect_in_sandbox(path, kind, limits)
    if "rejected" in report:
        raise ScanRejected(report["rejected"], **report.get("params", {}))
    return ScanInfo(mime=mime, kind=kind, pages=report["pages"], max_pixels=report["max_pixels"])


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
        )
    except SandboxError as exc:
        if exc.returncode == INTERNAL_ERROR:
            raise  # our bug, not the file's fault: the caller answers 503
        if exc.code == "failed":
            raise ScanRejected("unreadable", detail=exc.detail[-200:]) from None
        raise ScanRejected("too_costly", detail=exc.code) from None
    report: dict[str, Any] = json.loads(out)
    return report
