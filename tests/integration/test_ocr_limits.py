"""The limits the OCR sandbox promises, and the parallelism the workers promise (real tesseract)."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from channels.letters.intake import LetterFile, LetterUpload, accept_letter
from channels.letters.worker import run_ocr_workers
from gateway.lib.services import Services
from normalizer.ocr import OcrFailed, ScanLimits, engine, pdf, run_ocr
from normalizer.ocr.job import (
    MAX_LETTER_SECONDS,
    ScanFile,
    job_spec,
    letter_timeout,
    reading_seconds,
)
from normalizer.ocr.sandbox import Limits, SandboxError, run_limited
from tests.peers import scans
from tests.peers.processes import wait_until


def test_program_over_its_memory_cap_fails_with_the_memory_reason() -> None:
    grab = "bytearray(300 * 1024 * 1024)"
    with pytest.raises(SandboxError) as caught:
        run_limited([sys.executable, "-c", grab], Limits(timeout=30, memory_mb=150))
    assert caught.value.code == "memory"
    assert run_limited([sys.executable, "-c", grab], Limits(timeout=30, memory_mb=1024)) == b""


def test_ocr_job_gets_one_page_budget_per_page_and_one_to_start() -> None:
    files = [ScanFile(Path("a.tif"), "tiff", 3), ScanFile(Path("b.png"), "png", 1)]
    assert letter_timeout(files, ScanLimits(timeout=10.0)) == 10.0 * (4 + 1)


def test_ocr_job_gets_two_page_budgets_more_for_opening_each_pdf() -> None:
    # pdfinfo runs twice per PDF file, each call allowed a page budget: a
    # letter of several PDFs whose pages run close to their budget must not
    # have its whole job killed.
    files = [ScanFile(Path("a.pdf"), "pdf", 2), ScanFile(Path("b.pdf"), "pdf", 1)]
    assert letter_timeout(files, ScanLimits(timeout=10.0)) == 10.0 * (3 + 2 * 2 + 1)


def test_file_of_unknown_page_count_counts_as_the_page_cap() -> None:
    files = [ScanFile(Path("a.tif"), "tiff")]
    assert reading_seconds(files, ScanLimits(timeout=1.0, max_pages=7)) == 7.0


def test_long_letters_pages_get_the_letter_ceiling_not_one_budget_each() -> None:
    files = [ScanFile(Path("a.pdf"), "pdf", 50)]
    limits = ScanLimits(timeout=60.0)
    assert reading_seconds(files, limits) == MAX_LETTER_SECONDS < 50 * 60.0
    assert letter_timeout(files, limits) == MAX_LETTER_SECONDS + 60.0 * (2 + 1)


def _slow_program(folder: Path, name: str, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """``name`` first on PATH: the real program, started ``seconds`` late."""
    real = shutil.which(name)
    assert real is not None
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec "{real}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def _pdf_spec(tmp_path: Path, **extra: object) -> dict[str, object]:
    path = tmp_path / "lettre.pdf"
    path.write_bytes(scans.text_pdf(scans.FRENCH_LETTER))
    return {**job_spec([ScanFile(path, "pdf")], ScanLimits(timeout=10.0), tmp_path), **extra}


def test_opening_a_pdf_shares_one_deadline_over_all_its_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pdfinfo runs twice when a PDF is opened, 3 s each here: each run fits in
    # the page budget (10 s), both do not fit in the opening's 4 s. Without a
    # shared deadline the opening could take a page budget per call, more
    # than the job's own time counts for it.
    _slow_program(tmp_path / "bin", "pdfinfo", 3.0, monkeypatch)
    assert "Casablanca" in engine.ocr_document(_pdf_spec(tmp_path)).text
    with pytest.raises(pdf.PdfRefused) as caught:
        engine.ocr_document(_pdf_spec(tmp_path, opening_seconds=4.0))
    assert caught.value.code == "too_costly"


def _page_file(tmp_path: Path) -> ScanFile:
    path = tmp_path / "lettre.png"
    path.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER), "png"))
    return ScanFile(path, "png", 1)


def test_ocr_job_given_too_little_memory_fails_with_the_memory_reason(tmp_path: Path) -> None:
    with pytest.raises(OcrFailed) as caught:
        run_ocr([_page_file(tmp_path)], ScanLimits(memory_mb=60))
    assert caught.value.code == "memory"
    assert not caught.value.internal


def test_ocr_job_with_the_default_memory_reads_the_page(tmp_path: Path) -> None:
    result = run_ocr([_page_file(tmp_path)], ScanLimits())
    assert "Casablanca" in result.text


def _long_letter(seed: int) -> LetterUpload:
    pages = [
        scans.render_page(scans.FRENCH_LETTER, angle=1.0, seed=seed + index) for index in range(3)
    ]
    return LetterUpload(files=[LetterFile("l.tif", scans.multipage_tiff(pages))], source="api")


def test_two_ocr_workers_read_two_letters_at_the_same_time(services: Services) -> None:
    ids = [accept_letter(services, _long_letter(seed)).letter_id for seed in (10, 20)]
    queue = services.store.letters
    stop = threading.Event()
    workers = threading.Thread(target=run_ocr_workers, args=(services, stop, 2), daemon=True)
    workers.start()
    try:
        statuses = lambda: [queue.get(letter_id).status for letter_id in ids]  # noqa: E731
        wait_until(lambda: statuses() == ["running", "running"], "both letters read at once")
        wait_until(lambda: statuses() == ["done", "done"], "both letters read", timeout=180)
    finally:
        stop.set()
        workers.join(timeout=60)
