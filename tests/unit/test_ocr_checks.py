"""Checks on a scan: its type from the bytes (python-magic), then what its contents carry.

The PDF and image checks below are the pure-Python parts of the sandboxed
inspection: names a PDF writes (escaped or in object streams), and Pillow
failing on a truncated file.
"""

from pathlib import Path

import pytest

from normalizer.ocr import ScanLimits, ScanRejected, images, inspect_scan, pdf
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
@pytest.mark.parametrize("where", sorted(scans.ACTIVE_CONTENT))
@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "escaped"])
def test_pdf_active_content_is_found_however_its_names_are_spelled(
    where: str, escaped: bool
) -> None:
    assert pdf.ACTIVE_NAMES & pdf.written_names(scans.javascript_pdf(where, escaped=escaped))


@pytest.mark.parametrize("where", ["open_action", "launch"])
@pytest.mark.parametrize("encoding", ["flate", "hex"])
def test_pdf_action_inside_a_compressed_object_stream_is_found(where: str, encoding: str) -> None:
    catalog = scans.escape_names(scans.ACTIVE_CONTENT[where])
    data = scans.object_stream_pdf(catalog, encoding=encoding)
    assert b"Launch" not in data and b"JS" not in data  # nothing a plain byte scan could see
    assert pdf.ACTIVE_NAMES & pdf.written_names(data)


def test_pdf_without_active_content_names_none() -> None:
    for data in (scans.text_pdf(scans.FRENCH_LETTER), scans.object_stream_pdf()):
        assert not pdf.ACTIVE_NAMES & pdf.written_names(data)


def image_stream_pdf(data: bytes) -> bytes:
    return (
        b"%%PDF-1.4\n6 0 obj\n<< /Type /XObject /Subtype /Image /Filter /DCTDecode "
        b"/Length %d >>\nstream\n" % len(data) + data + b"\nendstream\nendobj\n"
    )


def test_image_bytes_that_happen_to_spell_a_script_name_are_not_a_script() -> None:
    # A scan's JPEG data is random bytes: "/JS" followed by a space turns up by chance.
    written = pdf.written_names(image_stream_pdf(b"\xff\xd8\x10/JS \x9a/Launch\x00\xff\xd9"))
    assert not pdf.ACTIVE_NAMES & written


def test_object_hidden_inside_stream_data_is_read() -> None:
    hidden = b"\xff\xd8 7 0 obj << /S /J#61vaScript /J#53 (app.alert\\(1\\);) >> endobj \xff\xd9"
    assert pdf.ACTIVE_NAMES & pdf.written_names(image_stream_pdf(hidden))


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
