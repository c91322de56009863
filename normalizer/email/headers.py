"""Header fields read from their raw form and decoded once, robustly.

Raw mail -> parse -> **headers** (addresses, ids, date, subject) -> complaint.

The stdlib's structured header parser (``policy.default``) leaves raw UTF-8
addresses (SMTPUTF8) as surrogate escapes, cannot join an Arabic letter split
across two encoded words in a display name, and recurses without bound on
nested comments. So header values are taken raw, decoded by
``charsets.decode_header_value`` and only then split into addresses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from normalizer.email.charsets import decode_encoded_words, decode_header_value, decode_raw_header

# Headers worth keeping in ``ParsedEmail.headers``: routing, threading,
# auto-reply evidence and the client, for a reviewer reading the complaint.
USEFUL_HEADERS = (
    "Message-ID",
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "In-Reply-To",
    "References",
    "Return-Path",
    "Auto-Submitted",
    "Precedence",
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress",
    "List-Id",
    "List-Unsubscribe",
    "Content-Type",
    "X-Mailer",
    "User-Agent",
    "X-Original-To",
    "Delivered-To",
)
_MSG_ID = re.compile(r"<([^<>\s]+)>")
# An id is a lookup key in the store (an indexed column, part of the dedup key):
# one with control characters (PostgreSQL refuses NUL in text) or longer than
# any real mailer writes is the sender's noise, and is dropped, not stored.
MAX_MESSAGE_ID = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def raw_header(message: Message, name: str) -> str | None:
    """The first raw value of ``name`` (surrogate-escaped, still folded), or None."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def header_text(message: Message, name: str, notes: list[str] | None = None) -> str | None:
    """The decoded value of the first ``name`` header, or None when absent."""
    raw = raw_header(message, name)
    if raw is None:
        return None
    text, repairs = decode_header_value(raw)
    if notes is not None:
        notes.extend(f"header {name}: {repair}" for repair in repairs)
    return text


def useful_headers(message: Message) -> dict[str, str]:
    """The headers of ``USEFUL_HEADERS`` that are present, decoded."""
    found = {}
    for name in USEFUL_HEADERS:
        value = header_text(message, name)
        if value is not None:
            found[name] = value
    return found


def address_header(message: Message, name: str) -> list[tuple[str | None, str]]:
    """(display name or None, address) pairs from the first ``name`` header.

    The list is split before display names are decoded: a decoded name may
    hold a comma ("Alaoui, Mohamed") that would otherwise split it in two.
    """
    raw = raw_header(message, name)
    if raw is None:
        return []
    value, _notes = decode_raw_header(raw)
    pairs = []
    for display, address in getaddresses([value]):
        normalized = normalize_address(address)
        if normalized:
            pairs.append((decode_encoded_words(display).strip() or None, normalized))
    return pairs


def normalize_address(address: str) -> str | None:
    """``local@domain`` with the domain lower-cased and IDN labels shown in Unicode.

    The local part is kept as written (it may be case-sensitive, and may be
    UTF-8 under SMTPUTF8). Anything without exactly one ``@`` is not an address.
    """
    address = address.strip().strip("<>")
    if address.count("@") != 1:
        return None
    local, domain = address.split("@")
    if not local or not domain or any(char.isspace() for char in address):
        return None
    return f"{local}@{idn_to_unicode(domain)}"


def idn_to_unicode(domain: str) -> str:
    """``xn--`` labels decoded to Unicode and the whole domain lower-cased."""
    labels = []
    for label in domain.strip(".").lower().split("."):
        labels.append(_label_to_unicode(label) if label.startswith("xn--") else label)
    return ".".join(labels)


def _label_to_unicode(label: str) -> str:
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label  # a broken A-label stays as written: still a stable key


def message_ids(value: str | None) -> tuple[str, ...]:
    """Every ``<id>`` in a Message-ID, In-Reply-To or References value, in order, deduplicated.

    A bare id without angle brackets (some broken mailers) is taken whole.
    """
    if not value:
        return ()
    found = [f"<{match}>" for match in _MSG_ID.findall(value)]
    if not found and value.strip() and " " not in value.strip():
        found = [f"<{value.strip().strip('<>')}>"]
    usable = (item for item in found if len(item) <= MAX_MESSAGE_ID and not _CONTROL.search(item))
    return tuple(dict.fromkeys(usable))


def parse_date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime; ``-0000`` and no zone are read as UTC."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
