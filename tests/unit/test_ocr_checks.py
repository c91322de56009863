"""Checks on a scan: its type from the bytes (python-magic), then what its contents carry.

The image checks below are the pure-Python part of the sandboxed
inspection: Pillow failing on a truncated file. What a PDF carries is read
by poppler and qpdf, so those checks are tested with them, in
``tests/integration/test_letters_hostile.py``.
"""

from pathlib import Path

import pytest

from normalizer.ocr import ScanLimits, ScanRejected, images, inspect_scan
from normalizer.ocr.checks import check_type
from tests.peers import scans


@pytest.fixture(scope="module")
def page_png() -> bytes:
    return scans.encode(scans.render_page(("Bonjour",), noise=0.0, size=(400, 200)), "png")


def test_png_is_recognised_from_its_bytes(page_png: bytes) -> None:
    assert check_type(page_png, "scan.png") == ("image/png", "png")


def test_file_without_extension_is_judged_by_its_bytes(page_png: bytes) -> None:
    assert check_type(page_png, None) == ("image/png", "png")


def test_png_named_jpg_is_refused_as_a_mismatch(page_png: bytes) -> None:
    with pytest.raises(ScanRejected) as caught:
        check_type(page_png, "scan.jpg")
    assert caught.value.code == "type_mismatch"
    assert caught.value.status == 415


def test_executable_named_pdf_is_refused_with_415() -> None:
    with pytest.raises(ScanRejected) as caught:
        check_type(scans.executable_bytes(), "lettre.pdf")
    assert caught.value.code == "unsupported_type"
    assert caught.value.status == 415


def test_word_document_is_refused_even_with_a_pdf_name() -> None:
    with pytest.raises(ScanRejected) as caught:
        check_type(b"PK\x03\x04" + b"\x00" * 100, "lettre.pdf")
    assert caught.value.status == 415


def test_file_over_the_size_cap_is_refused_before_inspection(page_png: bytes) -> None:
    with pytest.raises(ScanRejected) as caught:
        inspect_scan(page_png, "scan.png", ScanLimits(max_bytes=1024))
    assert caught.value.code == "too_large"
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("language", "expected"),
    [("fr", "Type de fichier refusé"), ("ar", "نوع الملف مرفوض"), ("en", "File type refused")],
)
def test_refusal_is_worded_in_the_users_language(language: str, expected: str) -> None:
    assert (
        ScanRejected("unsupported_type", found="text/plain").message(language).startswith(expected)
    )


def test_every_refusal_has_french_arabic_and_english_texts() -> None:
    from normalizer.ocr.checks import _reasons

    for code, texts in _reasons().items():
        assert {"fr", "ar", "en", "status"} <= set(texts), code


# -- what the checks read inside a file -------------------------------------------
@pytest.mark.parametrize("cut", scans.TIFF_CUTS)
def test_truncated_multipage_tiff_is_refused_as_unreadable(
    tmp_path: Path, cut: float, truncated_tiffs: dict[float, bytes]
) -> None:
    path = tmp_path / "coupee.tif"
    path.write_bytes(truncated_tiffs[cut])
    with pytest.raises(images.ImageRefused) as caught:
        list(images.open_frames(path, max_pages=50, max_pixels=40_000_000))
    assert caught.value.code == "unreadable"


def test_truncated_tiffs_include_the_cut_pillow_fails_on_with_a_type_error(
    truncated_tiffs: dict[float, bytes],
) -> None:
    # The case the refusal above is for: not an OSError, which was always handled.
    assert TypeError in {scans.pillow_error(data) for data in truncated_tiffs.values()}


@pytest.fixture(scope="module")
def truncated_tiffs() -> dict[float, bytes]:
    return dict(zip(scans.TIFF_CUTS, scans.truncated_multipage_tiffs(), strict=True))
