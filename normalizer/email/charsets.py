"""Bytes to text, trusting declared charsets only as far as the bytes agree.

Raw mail -> parse -> **charsets** (every text part and header) -> complaint.

Moroccan mail arrives in UTF-8, windows-1256 and iso-8859-6, and often lies
about it: Arabic declared as ``us-ascii`` or ``iso-8859-1``, UTF-8 declared as
``windows-1252``, raw 8-bit headers with no declaration at all. The rule is:
a declared charset wins when it decodes cleanly and the text it gives does not
look like mojibake; otherwise valid UTF-8 wins; otherwise charset-normalizer
guesses. Every override is reported as a note so a reviewer can see it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

# Mojibake (Arabic read as Latin-1) scores above 1.0 here; clean text scores 0.
_MESS_LIMIT = 0.2
# Detection and mess scoring look at a sample: enough to decide, bounded cost.
_SAMPLE = 64 * 1024
# Ties go to the first: French in windows-1252 also decodes cleanly as 1256.
_LIKELY = ("cp1252", "cp1256", "iso8859-6")
_WIDE = ("utf-16", "utf-32")
_SEVEN_BIT = ("iso2022", "utf-7", "hz")
_DISPLAY = {"cp1256": "windows-1256", "cp1252": "windows-1252", "utf_8": "utf-8"}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"\s+")


def find_codec(name: str | None) -> str | None:
    """Python's canonical codec name for a declared charset, or None if unknown."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip('"').split("*")[0]).name
    except (LookupError, ValueError):
        return None


def display_name(codec: str) -> str:
    """The name a person expects (``windows-1256``), not Python's (``cp1256``)."""
    canonical = _DISPLAY.get(codec, codec)
    return canonical.replace("iso8859", "iso-8859").replace("_", "-")


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode ``data`` declared as ``declared``; return the text and a repair note or None."""
    codec = find_codec(declared)
    label = f"declared {declared.strip().lower()}" if declared else "no charset declared"
    if data.isascii() and not (codec or "").startswith(_SEVEN_BIT):
        return data.decode("ascii"), None
    if codec != "utf-8" and not (codec or "").startswith(_WIDE) and _is_utf8(data):
        note = None if codec is None and declared is None else f"{label}, decoded as utf-8"
        return data.decode("utf-8"), note
    if codec is not None:
        text = _strict(data, codec)
        if text is not None and (codec.startswith(_WIDE) or _looks_clean(text)):
            return text, None
    guessed = detect_charset(data)
    if guessed is not None:
        note = f"{label}, decoded as {display_name(guessed)}"
        return data.decode(guessed, "replace"), note
    fallback = codec or "utf-8"
    note = f"{label}, undecodable bytes replaced ({display_name(fallback)})"
    return data.decode(fallback, "replace"), note


def detect_charset(data: bytes) -> str | None:
    """Best guess for undeclared or mislabelled ``data`` (a Python codec name), or None.

    The charsets this inbox really receives are tried first, in order, and the
    cleanest wins: on a short message charset-normalizer alone happily calls
    windows-1256 Arabic "cp874" (Thai). It stays the fallback for the rest.
    """
    sample = data[:_SAMPLE]
    scored = []
    for rank, codec in enumerate(_LIKELY):
        text = _strict(sample, codec)
        if text is not None:
            scored.append((mess_ratio(text, 1.0), rank, codec))
    if scored and min(scored)[0] < _MESS_LIMIT:
        return min(scored)[2]
    best = from_bytes(sample).best()
    return find_codec(best.encoding) if best is not None else None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_clean(text: str) -> bool:
    sample = text[:_SAMPLE]
    return mess_ratio(sample, 1.0) < _MESS_LIMIT


def decode_header_value(raw: str) -> tuple[str, list[str]]:
    """Unfold and decode a raw header value: 8-bit bytes and RFC 2047 encoded words.

    ``raw`` is the value as the stdlib keeps it (undecodable bytes as
    surrogate escapes). Adjacent encoded words of one charset are joined
    before decoding, because mailers split a multibyte character (an Arabic
    letter, an emoji) across two words.
    """
    text, notes = decode_raw_header(raw)
    return decode_encoded_words(text, notes).strip(), notes


# An 8-bit byte kept by the parser as a lone surrogate (``surrogateescape``).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def decode_raw_header(raw: str) -> tuple[str, list[str]]:
    """Unfold ``raw`` and decode its 8-bit bytes (UTF-8 per RFC 6532, else guessed).

    Encoded words are left alone, so address lists can still be split safely
    before display names are decoded.
    """
    notes: list[str] = []
    text = re.sub(r"\r?\n(?=[ \t])", "", raw).replace("\r", "").replace("\n", "")
    if _ESCAPED_BYTE.search(text):
        data = text.encode("ascii", "surrogateescape")
        text, note = decode_bytes(data, "utf-8")
        if note:
            notes.append(note)
    return text, notes


def decode_encoded_words(text: str, notes: list[str] | None = None) -> str:
    """Replace RFC 2047 encoded words in ``text``; repair notes go to ``notes``."""
    notes = [] if notes is None else notes
    pieces: list[str] = []
    run: list[tuple[str, bytes]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if not (run and _BETWEEN_WORDS.fullmatch(between)):
            pieces.append(_flush(run, notes))
            pieces.append(between)
        charset, data = match.group(1), _word_bytes(match.group(2), match.group(3))
        if run and run[-1][0] == charset.lower():
            run[-1] = (run[-1][0], run[-1][1] + data)
        else:
            pieces.append(_flush(run, notes))
            run.append((charset.lower(), data))
        position = match.end()
    pieces.append(_flush(run, notes))
    pieces.append(text[position:])
    return "".join(pieces)


def _flush(run: list[tuple[str, bytes]], notes: list[str]) -> str:
    out = []
    for charset, data in run:
        text, note = decode_bytes(data, charset)
        if note:
            notes.append(note)
        out.append(text)
    run.clear()
    return "".join(out)


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding.lower() == "q":
        data = payload.replace("_", " ").encode("ascii", "replace")
        return quopri.decodestring(data, header=True)
    padded = payload + "=" * (-len(payload) % 4)
    try:
        return base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return payload.encode("ascii", "replace")
