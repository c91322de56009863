"""Quoted replies and signatures removed, so the body is what the customer wrote.

Raw mail -> parse -> text -> **quotes** -> body -> complaint.

The markers are data (``REPLY_MARKERS``), in the languages customers write
in: French, Arabic, English, Spanish. A reply is cut at the first
attribution line ("Le … a écrit :", "On … wrote:", "El … escribió:",
"… كتب …:"), at an "Original Message" separator, or at an Outlook header
block ("De : / Envoyé : / À :"); lines starting with ``>`` are dropped
wherever they are. If that leaves nothing (a reply written below the quote),
only the quoted lines go. If even that leaves nothing, the text is kept
whole: an empty complaint is worse than a quoted one. The caller keeps the
unstripped text as ``full_text``.
"""

from __future__ import annotations

import re
import unicodedata

_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")

# One attribution line, possibly wrapped over two or three lines by the client.
_ATTRIBUTION = (
    re.compile(r"^le\b.{0,250}\ba\s+[ée]crit\s*:?$", re.I | re.S),
    re.compile(r"^on\b.{0,250}\bwrote\s*:$", re.I | re.S),
    re.compile(r"^el\b.{0,250}\bescribi[óo]\s*:$", re.I | re.S),
    re.compile(r"^am\b.{0,250}\bschrieb.{0,100}:$", re.I | re.S),
    re.compile(r"^في(?!\w).{0,250}(?<!\w)كتب(?!\w).{0,250}:$", re.S),
    re.compile(r"^.{0,250}تمت كتابة ما يلي بواسطة.{0,250}$", re.S),
)
# Clients always put a date or an address in the attribution; requiring one
# keeps a customer's own "mon frère m'a écrit :" or "كتب لي الموظف:" in the body.
_DATE_OR_ADDRESS = re.compile(r"\d|@")
_SEPARATOR = re.compile(
    r"^-{2,}\s*(original message|message d'origine|message original|mensaje original"
    r"|الرسالة الأصلية)\s*-{2,}$",
    re.I,
)
_HEADER_FROM = re.compile(r"^\*?(from|de|von|من)\s*\*?\s*:\s*\S", re.I)
_HEADER_OTHER = re.compile(
    r"^\*?(sent|date|to|cc|subject|envoy[ée]|[àa]|objet|enviado|para|asunto|fecha"
    r"|gesendet|an|betreff|تم الإرسال|التاريخ|إلى|الى|نسخة|الموضوع)\s*\*?\s*:",
    re.I,
)
_UNDERSCORES = re.compile(r"^_{10,}$")
_QUOTED = re.compile(r"^\s{0,3}>")
_SIGNATURE = re.compile(r"^--\s?$")
_MOBILE_FOOTER = re.compile(
    r"^(envoy[ée] (de|depuis) mon|sent from my|enviado desde mi|get outlook for"
    r"|obtenir outlook pour|t[ée]l[ée]charger outlook pour|أرسلت من|أُرسلت من|مرسل من)",
    re.I,
)
# A "-- " separator with more than this many lines after it is not a signature.
_MAX_SIGNATURE_LINES = 15

REPLY_MARKERS = (*_ATTRIBUTION, _SEPARATOR)


def normalize_whitespace(text: str) -> str:
    """NFC, ``\\n`` line ends, no control characters, no trailing spaces, one blank line at most."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def clean_body(text: str) -> str:
    """The customer's own words: whitespace normalized, quotes and signature removed."""
    text = normalize_whitespace(text)
    return normalize_whitespace(strip_signature(strip_quotes(text)))


def strip_quotes(text: str) -> str:
    """``text`` without the quoted reply (see the module docstring for the rules)."""
    lines = text.split("\n")
    cut = find_reply_start(lines)
    own = [line for line in lines[:cut] if not _QUOTED.match(line)]
    if _has_text(own):
        return "\n".join(own)
    # Written below the quote: keep what is not quoted, minus the marker itself.
    unquoted = [
        line for index, line in enumerate(lines) if index != cut and not _QUOTED.match(line)
    ]
    return "\n".join(unquoted) if _has_text(unquoted) else text


def find_reply_start(lines: list[str]) -> int:
    """Index of the first line of a quoted reply, or ``len(lines)`` when there is none."""
    for index, line in enumerate(lines):
        if _is_reply_start(lines, index, _BIDI.sub("", line).strip()):
            # An Outlook header block is often preceded by a rule of underscores.
            if index > 0 and _UNDERSCORES.match(lines[index - 1].strip()):
                return index - 1
            return index
    return len(lines)


def _is_reply_start(lines: list[str], index: int, line: str) -> bool:
    if not line or _QUOTED.match(line):
        return False
    if _SEPARATOR.match(line):
        return True
    if _HEADER_FROM.match(line):
        following = [_BIDI.sub("", item).strip() for item in lines[index + 1 : index + 6]]
        return sum(1 for item in following if _HEADER_OTHER.match(item)) >= 2
    for span in (1, 2, 3):
        window = [_BIDI.sub("", item).strip() for item in lines[index : index + span]]
        if len(window) < span or not all(window):
            break  # a wrapped attribution never spans a blank line
        joined = " ".join(window)
        if _DATE_OR_ADDRESS.search(joined) and any(p.match(joined) for p in _ATTRIBUTION):
            return True
    return False


def strip_signature(text: str) -> str:
    """``text`` without a ``-- `` signature block and "Sent from my phone" footers."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if not _SIGNATURE.match(line) or not _has_text(lines[:index]):
            continue
        tail = [item for item in lines[index + 1 :] if item.strip()]
        if len(tail) <= _MAX_SIGNATURE_LINES:
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or _MOBILE_FOOTER.match(lines[-1].strip())):
        if not _has_text(lines[:-1]):
            break
        lines.pop()
    return "\n".join(lines)


def _has_text(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)
