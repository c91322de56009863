"""Real tesseract on scans made here: French and Arabic letters, turned, noisy, multi-page.

Each test states its character error rate bound; the numbers on the
development scans are in docs/benchmarks.md (bench/ocr_bench.py).
"""

from pathlib import Path

import pytest
from PIL import Image

from normalizer.ocr import ScanLimits, inspect_scan, run_ocr
from normalizer.ocr.job import ScanFile
from normalizer.ocr.quality import character_error_rate
from tests.peers import scans

LIMITS = ScanLimits(timeout=120)


def ocr_file(tmp_path: Path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    info = inspect_scan(data, name, LIMITS)
    return run_ocr([ScanFile(path, info.kind)], LIMITS, tmp_path / "thumb.png")


def test_noisy_turned_french_letter_reads_under_2_percent_cer(tmp_path: Path) -> None:
    page = scans.render_page(scans.FRENCH_LETTER, angle=2.5, noise=0.01)
    result = ocr_file(tmp_path, "lettre.png", scans.encode(page, "png"))
    cer = character_error_rate(result.text, scans.truth(scans.FRENCH_LETTER))
    assert cer < 0.02, (cer, result.text)
    assert result.pages[0].languages == "fra+eng"


def test_noisy_turned_arabic_letter_is_read_with_the_arabic_model(tmp_path: Path) -> None:
    page = scans.render_page(scans.ARABIC_LETTER, arabic=True, angle=-2.0, noise=0.01)
    result = ocr_file(tmp_path, "risala.jpg", scans.encode(page, "jpeg"))
    cer = character_error_rate(result.text, scans.truth(scans.ARABIC_LETTER))
    assert result.pages[0].script == "Arabic"
    assert result.pages[0].languages == "ara"
    assert cer < 0.05, (cer, result.text)


def test_page_scanned_upside_down_is_turned_upright(tmp_path: Path) -> None:
    page = scans.render_page(scans.FRENCH_LETTER, angle=0, noise=0.0).rotate(180)
    result = ocr_file(tmp_path, "envers.png", scans.encode(page, "png"))
    assert result.pages[0].rotation == 180
    assert character_error_rate(result.text, scans.truth(scans.FRENCH_LETTER)) < 0.03


def test_multipage_tiff_keeps_its_pages_in_order(tmp_path: Path) -> None:
    pages = [
        scans.render_page(scans.FRENCH_LETTER, angle=1.0),
        scans.render_page(scans.FRENCH_LETTER_PAGE_2, angle=-1.0),
    ]
    result = ocr_file(tmp_path, "lettre.tif", scans.multipage_tiff(pages))
    assert [page.index for page in result.pages] == [0, 1]
    assert "Casablanca" in result.pages[0].text
    assert "salutations" in result.pages[1].text


def test_pdf_with_a_text_layer_uses_it_instead_of_ocr(tmp_path: Path) -> None:
    result = ocr_file(tmp_path, "lettre.pdf", scans.text_pdf(scans.FRENCH_LETTER))
    assert result.pages[0].method == "text-layer"
    assert character_error_rate(result.text, scans.truth(scans.FRENCH_LETTER)) == 0.0


def test_scanned_pdf_without_text_is_rasterized_and_read(tmp_path: Path) -> None:
    page = scans.render_page(scans.FRENCH_LETTER, angle=1.5, noise=0.0)
    result = ocr_file(tmp_path, "scan.pdf", scans.encode(page, "pdf"))
    assert result.pages[0].method == "ocr"
    assert character_error_rate(result.text, scans.truth(scans.FRENCH_LETTER)) < 0.03


def test_page_of_noise_gets_a_low_confidence(tmp_path: Path) -> None:
    page = scans.render_page(("x",), angle=0, noise=0.08)
    result = ocr_file(tmp_path, "bruit.png", scans.encode(page, "png"))
    assert result.low_confidence_pages(60.0) == [1]


def test_first_page_gives_a_thumbnail(tmp_path: Path) -> None:
    page = scans.render_page(scans.FRENCH_LETTER)
    ocr_file(tmp_path, "lettre.png", scans.encode(page, "png"))
    with Image.open(tmp_path / "thumb.png") as thumbnail:
        assert thumbnail.width <= 240


@pytest.mark.parametrize(("kind", "name"), [("png", "p.png"), ("jpeg", "p.jpg"), ("tiff", "p.tif")])
def test_each_accepted_image_type_is_read(tmp_path: Path, kind: str, name: str) -> None:
    page = scans.render_page(scans.FRENCH_LETTER_PAGE_2, angle=0.5, noise=0.0)
    result = ocr_file(tmp_path, name, scans.encode(page, kind))
    assert "transfert" in result.text


def test_normalize_scan_file_previews_the_complaint_without_storing(
    tmp_path: Path, settings
) -> None:
    from channels.letters.preview import normalize_scan_file

    scan = tmp_path / "lettre.jpg"
    scan.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER), "jpeg"))
    message = normalize_scan_file(settings, scan)
    assert message.channel.value == "letter"
    assert message.language.tag == "fr"
    assert "transfert" in message.body
    assert message.attachments[0].content_type == "image/jpeg"
    assert not (settings.data_dir / "intake.db").exists()
