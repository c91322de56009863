"""The OCR job: the parent-side call that runs ``normalizer.ocr.child`` in the sandbox.

``python -m normalizer.ocr.child inspect|ocr`` reads a JSON spec on stdin and
writes a JSON answer on stdout. It is what decodes untrusted files, so it
always runs under ``sandbox.run_limited`` (timeout, memory cap); a file
that crashes or exhausts it costs this process, never the worker. The
timeout (``ScanLimits.timeout``) is per page: each page spends at most that
inside the job, and the pages together at most ``MAX_LETTER_SECONDS``
(pages past it are skipped, the letter goes to a person). The job as a whole
gets its pages' time plus what opening the files and starting may take
(``letter_timeout``), so a long honest letter is read to the end and is
never killed whole. Exit 70 means our own code failed (not the file's fault).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normalizer.errors import OurFailure
from normalizer.ocr.checks import CHILD, ScanLimits
from normalizer.ocr.result import DocumentResult
from normalizer.ocr.sandbox import INTERNAL_ERROR, Confine, Limits, SandboxError, run_limited


class OcrFailed(OurFailure):
    """OCR could not read the document; ``internal`` is True when it was our fault."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        internal: bool = False,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.internal = internal
        self.params = params or {}

    def reason(self, language: str = "fr") -> str:
        """The refusal in words, with the same texts as the upload checks."""
        from normalizer.ocr.checks import ScanRejected

        if self.code in ("timeout", "memory"):
            return ScanRejected("too_costly", detail=self.code).message(language)
        try:
            return ScanRejected(self.code, **self.params).message(language)
        except (KeyError, IndexError):
            return ScanRejected("unreadable", detail=self.detail[-200:]).message(language)


@dataclass(frozen=True)
class ScanFile:
    path: Path
    kind: str  # pdf, tiff, jpeg, png
    # As counted by the upload checks; None counts as the page cap (the job's time budget).
    pages: int | None = None


# The pages of one letter together get at most this long, however close to
# its own budget each page runs: pages built to run just under the page
# budget would otherwise hold a worker for pages x budget (50 min at the
# defaults). An honest page takes 3 to 20 s here, so 50 of them fit.
MAX_LETTER_SECONDS = 30 * 60
# Opening a PDF in the job (its page count and sizes: the upload checks' own
# poppler and qpdf calls) gets this many page budgets, shared by those calls
# however many they are. The upload checks did all of it in one.
PDF_OPENING_BUDGETS = 2


def reading_seconds(files: list[ScanFile], limits: ScanLimits) -> float:
    """What the letter's pages may take in all: one page budget each, up to the ceiling."""
    pages = sum(item.pages or limits.max_pages for item in files)
    return min(limits.timeout * pages, MAX_LETTER_SECONDS)


def letter_timeout(files: list[ScanFile], limits: ScanLimits) -> float:
    """The whole job's time: its pages', opening each PDF, and one budget for start-up.

    Larger than anything the job spends within its own limits, so that it is
    only ever cut short by them (pages left unread), not killed whole.
    """
    pdf_files = sum(1 for item in files if item.kind == "pdf")
    opening = limits.timeout * (PDF_OPENING_BUDGETS * pdf_files + 1)
    return reading_seconds(files, limits) + opening


def job_spec(
    files: list[ScanFile], limits: ScanLimits, workdir: Path, thumbnail: Path | None = None
) -> dict[str, Any]:
    """What the sandboxed job is told (``engine.ocr_document`` reads it)."""
    return {
        "files": [{"path": str(item.path.resolve()), "kind": item.kind} for item in files],
        "max_pages": limits.max_pages,
        "max_pixels": limits.max_pixels,
        "timeout": limits.timeout,
        "letter_seconds": reading_seconds(files, limits),
        "opening_seconds": limits.timeout * PDF_OPENING_BUDGETS,
        "memory_mb": limits.memory_mb,
        "workdir": str(workdir),
        "thumbnail": str(thumbnail) if thumbnail else None,
    }


THUMBNAIL_NAME = "thumbnail.png"
# A first page's thumbnail is a few tens of KB; more is not a thumbnail.
MAX_THUMBNAIL_BYTES = 4 * 1024 * 1024


def _copy_out(drawn: Path, thumbnail: Path) -> None:
    """The job's thumbnail to where the caller wants it: a regular file only, never a link
    the job left there (it must not make us copy a file it could not read itself)."""
    try:
        fd = os.open(drawn, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # none drawn (no page was rendered), or not a file
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return
        data = source.read(MAX_THUMBNAIL_BYTES + 1)
    if len(data) <= MAX_THUMBNAIL_BYTES:
        thumbnail.write_bytes(data)


def run_ocr(
    files: list[ScanFile], limits: ScanLimits, thumbnail: Path | None = None
) -> DocumentResult:
    """OCR every page of ``files`` in one sandboxed job; ``OcrFailed`` if it cannot.

    A page that runs out of its budget comes back unread (``PageResult.error``)
    and the letter keeps its other pages, as do pages skipped once the letter
    has spent ``reading_seconds``; only a letter of which no page could be
    read fails.
    """
    with tempfile.TemporaryDirectory(prefix="intake-ocr-") as workdir:
        # The job writes only in its work folder; the thumbnail is copied out after.
        drawn = Path(workdir) / THUMBNAIL_NAME if thumbnail else None
        spec = job_spec(files, limits, Path(workdir), drawn)
        try:
            out = run_limited(
                [sys.executable, "-m", CHILD, "ocr"],
                Limits(timeout=letter_timeout(files, limits), memory_mb=limits.memory_mb),
                stdin=json.dumps(spec).encode(),
                cwd=workdir,
                confine=Confine(
                    reads=tuple(item.path.resolve() for item in files), writes=(Path(workdir),)
                ),
            )
        except SandboxError as exc:
            internal = exc.returncode == INTERNAL_ERROR
            code = exc.code if exc.code != "failed" else "unreadable"
            raise OcrFailed(
                code, exc.detail[-300:], internal=internal, params={"detail": exc.detail[-200:]}
            ) from None
        if drawn is not None and thumbnail is not None:
            _copy_out(drawn, thumbnail)
    answer = json.loads(out)
    if "rejected" in answer:
        params = answer.get("params", {})
        raise OcrFailed(answer["rejected"], json.dumps(params), params=params)
    result = DocumentResult.from_json(answer)
    if result.unread:
        code = str(result.pages[0].error)
        raise OcrFailed(code, f"no page could be read: {code}", params={"detail": code})
    return result
