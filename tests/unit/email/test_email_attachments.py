"""Attachments are described by their bytes; names are made safe."""

from __future__ import annotations

import hashlib

import pytest

from normalizer.email.attachments import build_attachment, sanitize_filename

pytestmark = pytest.mark.unit


def test_real_png_jpeg_pdf_are_sniffed_and_marked_for_ocr(media):
    for data, expected in (
        (media.png_bytes(), "image/png"),
        (media.jpeg_bytes(), "image/jpeg"),
        (media.pdf_bytes(), "application/pdf"),
    ):
        item = build_attachment(data, "x.bin", "application/octet-stream", False, None)
        assert item.sniffed_type == expected
        assert item.needs_ocr
        assert item.sha256 == hashlib.sha256(data).hexdigest()
        assert item.size == len(data)


def test_empty_attachment_is_not_sent_to_ocr():
    item = build_attachment(b"", "vide.png", "image/png", False, None)
    assert not item.needs_ocr


def test_content_id_loses_its_angle_brackets(media):
    item = build_attachment(media.png_bytes(), None, "image/png", True, "<logo@x>")
    assert item.content_id == "logo@x"
    assert item.inline


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\scans\\recu.pdf", "recu.pdf"),
        ("fac\u202etxt.exe", "factxt.exe"),
        ("bad\x00name\x1f.pdf", "badname.pdf"),
        ("وصل التحويل.pdf", "وصل التحويل.pdf"),
        ("..", None),
        ("", None),
        (None, None),
    ],
)
def test_filenames_are_sanitised(raw, safe):
    assert sanitize_filename(raw) == safe


def test_very_long_filename_keeps_its_extension():
    name = sanitize_filename("a" * 500 + ".pdf")
    assert name is not None
    assert len(name) <= 200
    assert name.endswith(".pdf")
