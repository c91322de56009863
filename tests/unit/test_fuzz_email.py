"""Fuzzing the e-mail normalizer: whatever the bytes, ``parse_email`` answers, and quickly.

``parse_email`` is the first code that reads a stranger's bytes (SMTP and
IMAP both call it). The only acceptable outcomes are a ``ParsedEmail`` or
``EmailRejected`` (the sender's fault, answered 5xx or quarantined). Anything
else on hostile input would be answered as our fault (SMTP 451, the IMAP
message left in the inbox), which the sender retries forever: so on fuzzed
input even ``EmailInternalError`` is a failure. Three generators: raw
bytes, mail-shaped structures (headers, multiparts, encodings, charsets,
nesting), and mutations of the real fixtures.

Short in CI; ``INTAKE_LONG_FUZZ=1`` (``scripts/fuzz``) runs a hundred times
more examples and keeps failing examples in ``var/hypothesis``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from normalizer.email import EmailLimits, EmailRejected, ParsedEmail, parse_email
from normalizer.email.headers import MAX_MESSAGE_ID

LONG = bool(os.environ.get("INTAKE_LONG_FUZZ"))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
CORPUS = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
# Small limits so that the generators reach them, not only the happy path.
LIMITS = EmailLimits(max_bytes=64 * 1024, max_parts=20, max_depth=5, max_header_bytes=4096)


def fuzz(examples: int):  # type: ignore[no-untyped-def]
    """Hypothesis settings: ``examples`` in CI, a hundred times more in a long run.

    The deadline is the "never hangs" check: generous, because the machine
    is shared, but far below what a quadratic parse of hostile input costs.
    """
    return settings(
        max_examples=examples * (100 if LONG else 1),
        deadline=timedelta(seconds=5),
        database=DirectoryBasedExampleDatabase("var/hypothesis") if LONG else None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=not LONG,
    )


def parse_or_reject(raw: bytes, limits: EmailLimits | None = LIMITS) -> ParsedEmail | None:
    try:
        return parse_email(raw, limits)
    except EmailRejected as rejected:
        assert rejected.code and rejected.reason
        return None


def check_parsed(parsed: ParsedEmail | None) -> None:
    if parsed is None:
        return
    assert "\x00" not in parsed.body
    if parsed.message_id is not None:
        assert len(parsed.message_id) <= MAX_MESSAGE_ID
        assert not any(ord(char) < 32 or ord(char) == 127 for char in parsed.message_id)
    for attachment in parsed.attachments:
        name = attachment.filename or ""
        assert "/" not in name and "\\" not in name and "\x00" not in name


# -- generators --------------------------------------------------------------------
HEADER_NAMES = st.sampled_from(
    [
        b"From", b"To", b"Cc", b"Reply-To", b"Subject", b"Date", b"Message-ID", b"In-Reply-To",
        b"References", b"Content-Type", b"Content-Transfer-Encoding", b"Content-Disposition",
        b"MIME-Version", b"Auto-Submitted", b"X-Autoreply", b"Precedence", b"Return-Path",
    ]
)  # fmt: skip
CHARSETS = st.sampled_from(
    [b"utf-8", b"windows-1256", b"iso-8859-6", b"iso-8859-1", b"x-unknown", b"utf-7", b""]
)
ENCODINGS = st.sampled_from([b"7bit", b"8bit", b"base64", b"quoted-printable", b"x-uuencode", b""])
SUBTYPES = st.sampled_from([b"plain", b"html", b"mixed", b"alternative", b"rfc822", b"pdf"])
TEXT = st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace"))


@st.composite
def headers(draw) -> bytes:  # type: ignore[no-untyped-def]
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        name, value = draw(HEADER_NAMES), draw(TEXT)
        folded = value.replace(b"\n", b"\r\n ") if draw(st.booleans()) else value
        lines.append(name + b": " + folded)
    charset = draw(CHARSETS)
    encoded_word = b"=?" + charset + b"?" + draw(st.sampled_from([b"B", b"Q", b"X"])) + b"?"
    lines.append(b"Subject: " + encoded_word + draw(TEXT) + b"?=")
    return b"\r\n".join(lines)


@st.composite
def part(draw, depth: int = 0) -> bytes:  # type: ignore[no-untyped-def]
    subtype = draw(SUBTYPES)
    major = {b"mixed": b"multipart", b"alternative": b"multipart", b"rfc822": b"message"}
    kind = major.get(subtype, b"application" if subtype == b"pdf" else b"text")
    head = (
        b"Content-Type: " + kind + b"/" + subtype + b"; charset=" + draw(CHARSETS)
        + b"\r\nContent-Transfer-Encoding: " + draw(ENCODINGS)
        + b'\r\nContent-Disposition: attachment; filename="' + draw(TEXT)[:40] + b'"'
    )  # fmt: skip
    if kind == b"multipart" and depth < 6:
        boundary = draw(st.sampled_from([b"B", b"==x==", b"", b"B" * 71]))
        children = draw(st.lists(part(depth + 1), max_size=4))
        closing = b"\r\n--" + boundary + b"--\r\n" if draw(st.booleans()) else b""
        body = b"".join(b"\r\n--" + boundary + b"\r\n" + child for child in children) + closing
        head += b'; boundary="' + boundary + b'"'
    elif kind == b"message" and depth < 6:
        body = b"From: x@example.ma\r\n" + draw(part(depth + 1))
    else:
        body = draw(TEXT)
    return head + b"\r\n\r\n" + body


@st.composite
def mails(draw) -> bytes:  # type: ignore[no-untyped-def]
    return b"From: a@example.ma\r\n" + draw(headers()) + b"\r\n" + draw(part())


@st.composite
def mutated_fixtures(draw) -> bytes:  # type: ignore[no-untyped-def]
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            del data[position:]
    return bytes(data)


# -- properties --------------------------------------------------------------------
@fuzz(60)
@given(st.binary(max_size=4096))
def test_any_bytes_are_parsed_or_rejected_never_an_internal_error(raw: bytes) -> None:
    check_parsed(parse_or_reject(raw))


@fuzz(80)
@given(mails())
def test_mail_shaped_input_is_parsed_or_rejected_never_an_internal_error(raw: bytes) -> None:
    check_parsed(parse_or_reject(raw))


@fuzz(60)
@given(mutated_fixtures())
def test_mutated_real_mail_is_parsed_or_rejected_never_an_internal_error(raw: bytes) -> None:
    check_parsed(parse_or_reject(raw, limits=None))


@fuzz(30)
@given(mails())
def test_parsing_is_deterministic(raw: bytes) -> None:
    assert parse_or_reject(raw) == parse_or_reject(raw)
