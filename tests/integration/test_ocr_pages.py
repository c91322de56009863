"""Page by page: each page's own time budget, blank back pages, Spanish letters (real tesseract)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from channels.letters.intake import LetterFile, LetterUpload, accept_letter
from channels.letters.status import letter_view
from config.settings import Settings
from gateway.lib.services import build_services
from normalizer.ocr import DocumentResult, ScanLimits, engine, inspect_scan, run_ocr, tesseract
from normalizer.ocr.job import ScanFile, job_spec
from normalizer.ocr.quality import character_error_rate
from normalizer.ocr.sandbox import SandboxError
from tests.peers import scans
from tests.peers.ocr import STAND_IN_TEXT, ocr_worker, stand_in_tesseract
from tests.peers.processes import wait_until

SPANISH_LETTER = (
    "Tetuán, 14 de marzo de 2025",
    "Asunto: reclamación por una transferencia no recibida",
    "Señoras y señores:",
    "El día 3 de marzo envié 1500 dírhams a mi hermano desde",
    "la agencia de Tánger, pero nunca recibió el dinero.",
    "Les ruego que comprueben esta transferencia y que me",
    "devuelvan las comisiones. ¿Podrían contestarme pronto?",
)
PAGE_SIZE = (1700, 1400)


def text_page() -> Image.Image:
    return scans.render_page(scans.FRENCH_LETTER, angle=1.0, noise=0.0)


def blank_page() -> Image.Image:
    """The empty back of a duplex scan: white, with a little scanner speckle."""
    return scans.render_page((), angle=0.0, noise=0.001)


def read_tiff(tmp_path: Path, pages: list[Image.Image], limits: ScanLimits) -> DocumentResult:
    data = scans.multipage_tiff(pages)
    path = tmp_path / "lettre.tif"
    path.write_bytes(data)
    info = inspect_scan(data, path.name, limits)
    return run_ocr([ScanFile(path, info.kind, info.pages)], limits)


# The stand-in's reading: French, so no second pass with another model.
def small_page() -> Image.Image:
    """A page that is quick to prepare: the stand-in's sleep is most of its time."""
    return scans.render_page(("Page",), angle=0.0, noise=0.0, size=(600, 300))


def test_letter_longer_than_one_page_budget_is_read_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each page's recognition takes 60 % of its 3 s budget; the four pages
    # need 7.2 s in all, more than twice one budget. A per-letter limit of
    # one budget (or two) would kill the job.
    stand_in_tesseract(tmp_path / "bin", 1.8, monkeypatch)
    path = tmp_path / "lettre.tif"
    path.write_bytes(scans.multipage_tiff([small_page()] * 4))
    result = run_ocr([ScanFile(path, "tiff", 4)], ScanLimits(timeout=3.0))
    assert [page.error for page in result.pages] == [None] * 4
    assert all("Casablanca" in page.text for page in result.pages)


def _spec(tmp_path: Path, pages: list[Image.Image]) -> dict[str, object]:
    path = tmp_path / "lettre.tif"
    path.write_bytes(scans.multipage_tiff(pages))
    return job_spec([ScanFile(path, "tiff", len(pages))], ScanLimits(), tmp_path)


def _slow_on(pages: set[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages (0-based, in reading order) whose recognition runs out of its budget."""
    real, seen = tesseract.read_page, [0]

    def read_page(image, script, limits):  # type: ignore[no-untyped-def]
        seen[0] += 1
        if seen[0] - 1 in pages:
            raise SandboxError("timeout", "tesseract took longer than its page budget")
        return real(image, script, limits)

    monkeypatch.setattr(tesseract, "read_page", read_page)


def test_page_over_its_budget_is_left_unread_and_the_others_keep_their_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_on({1}, monkeypatch)
    result = engine.ocr_document(_spec(tmp_path, [text_page()] * 3))
    assert [page.error for page in result.pages] == [None, "timeout", None]
    assert "Casablanca" in result.pages[0].text and "Casablanca" in result.pages[2].text
    assert result.low_confidence_pages(60.0) == [2]


def test_pages_after_two_over_their_budget_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file built to be slow costs two page budgets, not one per page.
    _slow_on({0, 1}, monkeypatch)
    result = engine.ocr_document(_spec(tmp_path, [text_page()] * 4))
    assert [page.error for page in result.pages] == ["timeout", "timeout", "skipped", "skipped"]
    assert result.unread


def test_pages_past_the_letters_own_time_are_skipped_and_the_read_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each page runs just under its own budget (120 s), never over it: only
    # the letter's time stops them. The first page's recognition lasts past it.
    letter_seconds = 2.0

    def read_page(image, script, limits):  # type: ignore[no-untyped-def]
        time.sleep(letter_seconds)
        return tesseract.Reading(STAND_IN_TEXT, 95.0, "fra+eng"), "Latin"

    monkeypatch.setattr(tesseract, "read_page", read_page)
    spec = {**_spec(tmp_path, [small_page()] * 4), "letter_seconds": letter_seconds}
    result = engine.ocr_document(spec)
    assert [page.error for page in result.pages] == [None, "skipped", "skipped", "skipped"]
    assert "Casablanca" in result.pages[0].text


def test_blank_page_is_told_from_a_page_of_text(tmp_path: Path) -> None:
    result = read_tiff(tmp_path, [text_page(), blank_page()], ScanLimits())
    assert [page.blank for page in result.pages] == [False, True]
    assert result.pages[1].text == ""
    assert result.low_confidence_pages(60.0) == []
    assert result.min_confidence == result.pages[0].confidence


def _read_letter(settings: Settings, pages: list[Image.Image]):  # type: ignore[no-untyped-def]
    services = build_services(settings)
    try:
        upload = LetterUpload(
            files=[LetterFile("recto-verso.tif", scans.multipage_tiff(pages))], source="api"
        )
        accepted = accept_letter(services, upload)
        queue = services.store.letters
        with ocr_worker(services):
            wait_until(lambda: queue.get(accepted.letter_id).status == "done", "OCR", timeout=120)
        view = letter_view(queue.get(accepted.letter_id), "fr")
        return services.store.complaints.get_by_reference(accepted.reference), view
    finally:
        services.close()


def test_duplex_letter_with_a_blank_back_page_is_not_flagged_for_review(
    settings: Settings,
) -> None:
    complaint, view = _read_letter(settings, [text_page(), blank_page()])
    assert complaint is not None
    assert complaint.needs_review is False
    # The status page and API say the back page is blank, not "0 %".
    assert [page["blank"] for page in view["page_results"]] == [False, True]
    assert [page["error"] for page in view["page_results"]] == [None, None]
    assert complaint.subject is None
    assert complaint.attachments[0].ocr_confidence is not None
    assert complaint.attachments[0].ocr_confidence > 0.6


def test_letter_with_nothing_but_blank_pages_is_flagged_for_review(settings: Settings) -> None:
    complaint, _view = _read_letter(settings, [blank_page(), blank_page()])
    assert complaint is not None
    assert complaint.needs_review is True
    assert "page(s) 1, 2" in (complaint.subject or "")


def test_spanish_letter_is_read_again_with_the_spanish_model(tmp_path: Path) -> None:
    page = scans.render_page(SPANISH_LETTER, angle=1.0, noise=0.01, size=PAGE_SIZE)
    path = tmp_path / "carta.png"
    path.write_bytes(scans.encode(page, "png"))
    result = run_ocr([ScanFile(path, "png", 1)], ScanLimits())
    assert result.pages[0].languages == "spa+eng"
    cer = character_error_rate(result.text, scans.truth(SPANISH_LETTER))
    assert cer < 0.01, (cer, result.text)


def test_french_letter_keeps_the_french_model(tmp_path: Path) -> None:
    page = scans.render_page(scans.FRENCH_LETTER, angle=1.0, noise=0.01)
    path = tmp_path / "lettre.png"
    path.write_bytes(scans.encode(page, "png"))
    result = run_ocr([ScanFile(path, "png", 1)], ScanLimits())
    assert result.pages[0].languages == "fra+eng"
    assert character_error_rate(result.text, scans.truth(scans.FRENCH_LETTER)) < 0.02
