"""Declared charsets are trusted only when the bytes agree."""

from __future__ import annotations

import pytest

from normalizer.email.charsets import decode_bytes, decode_header_value

pytestmark = pytest.mark.unit

ARABIC = "السلام عليكم، لقد قمت بتحويل مبلغ 500 درهم"
FRENCH = "Bonjour, j'ai effectué un transfert à Casa, ça ne marche pas."


def test_declared_windows_1256_decodes_without_a_note():
    assert decode_bytes(ARABIC.encode("cp1256"), "windows-1256") == (ARABIC, None)


def test_arabic_declared_latin_1_is_detected_as_windows_1256():
    text, note = decode_bytes(ARABIC.encode("cp1256"), "iso-8859-1")
    assert text == ARABIC
    assert note == "declared iso-8859-1, decoded as windows-1256"


def test_undeclared_iso_8859_6_is_detected():
    text, note = decode_bytes(ARABIC.encode("iso-8859-6"), None)
    assert text == ARABIC
    assert note == "no charset declared, decoded as iso-8859-6"


def test_utf8_declared_latin_1_is_read_as_utf8():
    text, note = decode_bytes(FRENCH.encode("utf-8"), "iso-8859-1")
    assert text == FRENCH
    assert note == "declared iso-8859-1, decoded as utf-8"


def test_latin_1_declared_utf8_is_repaired():
    text, note = decode_bytes(FRENCH.encode("cp1252"), "utf-8")
    assert text == FRENCH
    assert note is not None


def test_unknown_charset_name_falls_back_to_detection():
    text, _note = decode_bytes(ARABIC.encode("utf-8"), "x-unknown-arabic")
    assert text == ARABIC


def test_encoded_words_in_two_charsets_are_both_decoded():
    raw = "=?windows-1256?b?x+HT4cfj?= =?utf-8?q?caf=C3=A9?="
    assert decode_header_value(raw)[0] == "السلامcafé"


def test_raw_utf8_header_bytes_are_decoded():
    raw = "شكاية".encode().decode("ascii", "surrogateescape")
    assert decode_header_value(raw) == ("شكاية", [])


def test_folded_header_is_unfolded():
    assert decode_header_value("Réclamation\r\n urgente")[0] == "Réclamation urgente"
