"""Type checks decided by the bytes (python-magic), before anything decodes them."""

import pytest

from normalizer.ocr import ScanLimits, ScanRejected, inspect_scan
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
