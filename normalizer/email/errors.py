"""The two ways e-mail normalization can fail.

Raw mail -> ``parse_email`` -> complaint. The channel that called us (IMAP
poller, SMTP receiver) maps these to its protocol in one place:

- ``EmailRejected`` is the **sender's fault**: the message is malformed or
  over a limit. Retrying will not help; SMTP answers 5xx, the IMAP poller
  quarantines the message with ``code`` and ``reason``.
- ``EmailInternalError`` is **our fault** (a library we need is missing or
  broken). Nothing is acknowledged and the caller retries later.
"""

from __future__ import annotations

from typing import Final

from normalizer.errors import InputRejected, OurFailure

TOO_LARGE: Final = "too_large"
TOO_MANY_PARTS: Final = "too_many_parts"
TOO_DEEP: Final = "too_deep"
HEADER_TOO_LARGE: Final = "header_too_large"
MALFORMED: Final = "malformed"

REJECTION_CODES: Final = frozenset(
    {TOO_LARGE, TOO_MANY_PARTS, TOO_DEEP, HEADER_TOO_LARGE, MALFORMED}
)


class EmailError(Exception):
    """Base class of every error raised by ``normalizer.email``."""


class EmailRejected(EmailError, InputRejected):
    """The message itself is unacceptable (sender's fault): do not retry.

    ``code`` is a stable machine code from ``REJECTION_CODES``; ``reason`` is a
    short English sentence fit for an SMTP reply or a quarantine note (it never
    quotes the message's content, so it is safe to log).
    """

    def __init__(self, code: str, reason: str) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class EmailInternalError(EmailError, OurFailure):
    """Normalization could not run for a reason on our side: retry later."""
