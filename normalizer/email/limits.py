"""Size and shape limits, checked before and while the MIME tree is parsed.

Raw mail -> **limits** -> stdlib parser -> walk -> complaint.

Python's ``email`` parser is not safe on hostile input: 10,000 sibling parts
cost it seconds, and 1,000 nested multiparts cost it more than ten seconds
before it dies with ``RecursionError``. So ``precheck`` scans the raw bytes
once, in linear time, counting boundary delimiters, nesting and header-block
sizes, and rejects before the parser ever sees the message. The walker then
re-checks parts and depth on the real tree (``PartBudget``), which is the
authoritative count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from normalizer.email.errors import (
    HEADER_TOO_LARGE,
    MALFORMED,
    TOO_DEEP,
    TOO_LARGE,
    TOO_MANY_PARTS,
    EmailRejected,
)

MiB = 1024 * 1024
KiB = 1024


@dataclass(frozen=True)
class EmailLimits:
    """What one message may weigh; defaults fit a complaint with a few scans."""

    max_bytes: int = 25 * MiB
    max_parts: int = 200
    max_depth: int = 20
    max_header_bytes: int = 64 * KiB


_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))""", re.I)
_MESSAGE_TYPE = re.compile(rb"content-type\s*:\s*message/(?:rfc822|global)\b", re.I)
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


def precheck(raw: bytes, limits: EmailLimits) -> None:
    """Reject ``raw`` cheaply when it is empty, too big, or shaped to hurt the parser."""
    if not raw.strip():
        raise EmailRejected(MALFORMED, "the message is empty")
    if len(raw) > limits.max_bytes:
        raise EmailRejected(
            TOO_LARGE, f"the message is {len(raw)} bytes, over the limit of {limits.max_bytes}"
        )
    first_line = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if not _HEADER_LINE.match(first_line) and not first_line.startswith(b"From "):
        raise EmailRejected(MALFORMED, "the message does not start with a header field")
    _Scanner(limits).scan(raw)


class _Scanner:
    """One pass over the lines: header-block sizes, part count, nesting depth.

    The nesting stack holds boundaries (a multipart is entered at its first
    delimiter) and ``None`` markers for message/rfc822 bodies; a delimiter of
    an outer boundary closes everything opened inside it.
    """

    def __init__(self, limits: EmailLimits) -> None:
        self.limits = limits
        self.declared: set[bytes] = set()
        self.stack: list[bytes | None] = []
        self.parts = 1
        self.in_header = True
        self.header_bytes = 0
        self.block_is_message = False

    def scan(self, raw: bytes) -> None:
        for line in raw.split(b"\n"):
            # Delimiters count even inside a header block: the stdlib parser
            # honours them there too, so hiding them in headers must not help.
            if line.startswith(b"--") and self._delimiter_line(line[2:].rstrip()):
                continue
            if self.in_header:
                self._header_line(line)

    def _header_line(self, line: bytes) -> None:
        if not line.strip(b"\r"):
            # A message/rfc822 part's body starts with the inner message's headers.
            self.in_header = self.block_is_message
            if self.block_is_message:
                self._push(None)
            self.block_is_message = False
            self.header_bytes = 0
            return
        self.header_bytes += len(line) + 1
        if self.header_bytes > self.limits.max_header_bytes:
            raise EmailRejected(
                HEADER_TOO_LARGE,
                f"a header block is over the limit of {self.limits.max_header_bytes} bytes",
            )
        for match in _BOUNDARY.finditer(line):
            self.declared.add(match.group(1) or match.group(2))
        if _MESSAGE_TYPE.match(line):
            self.block_is_message = True

    def _delimiter_line(self, token: bytes) -> bool:
        closing = token.endswith(b"--") and token[:-2] in self.declared
        boundary = token[:-2] if closing else token
        if boundary not in self.declared:
            return False
        if boundary in self.stack:
            del self.stack[self.stack.index(boundary) + (0 if closing else 1) :]
        elif not closing:
            self._push(boundary)
        if not closing:
            self.parts += 1
            self.in_header = True
            if self.parts > self.limits.max_parts:
                raise too_many_parts(self.limits)
        else:
            self.in_header = False
        return True

    def _push(self, entry: bytes | None) -> None:
        self.stack.append(entry)
        if len(self.stack) > self.limits.max_depth:
            raise too_deep(self.limits)


def too_many_parts(limits: EmailLimits) -> EmailRejected:
    return EmailRejected(TOO_MANY_PARTS, f"the message has more than {limits.max_parts} MIME parts")


def too_deep(limits: EmailLimits) -> EmailRejected:
    return EmailRejected(
        TOO_DEEP, f"the message nests MIME parts more than {limits.max_depth} levels deep"
    )


class PartBudget:
    """The walker's authoritative count of parts and depth on the parsed tree."""

    def __init__(self, limits: EmailLimits) -> None:
        self.limits = limits
        self.parts = 0

    def enter(self, depth: int, *, new_part: bool = True) -> None:
        """Account for one more part at ``depth`` (0 is the message itself)."""
        self.parts += new_part
        if self.parts > self.limits.max_parts:
            raise too_many_parts(self.limits)
        if depth > self.limits.max_depth:
            raise too_deep(self.limits)
