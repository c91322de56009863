"""The two kinds of failure every part of the gateway raises, and nothing else.

- ``InputRejected``: the sender's fault (a malformed mail, a scan that is not
  one, a field that is wrong, a name already taken). Answered at once in the
  protocol's own terms (SMTP 5xx, HTTP 4xx, exit 65), the input kept in
  quarantine with the reason; retrying the same input cannot help.
- ``OurFailure``: ours (the store, the broker, OCR, a peer down). Answered
  with "try again later" (SMTP 451, HTTP 503 + Retry-After, the mail left in
  the inbox, exit 75 or 69); nothing is acknowledged.

Each protocol maps them to its codes in one place: ``gateway.lib.http.errors``
(HTTP), ``channels.email.smtp`` (SMTP), ``channels.email.imap.outcomes``
(IMAP), ``gateway.lib.commands.exit_code_for`` (the shell). A configuration
error (``config.settings.ConfigError``, exit 78) is neither: the operator's.
"""

from __future__ import annotations


class InputRejected(Exception):
    """The sender's fault: the input is refused, and the same input always will be.

    ``code`` is a stable machine code, safe to log and to answer with;
    ``field`` names the part of the input at fault, when there is one.
    """

    code: str = "rejected"
    field: str | None = None


class OurFailure(Exception):
    """Our fault: nothing was acknowledged, and the same input may go through later.

    ``retryable`` is False for a failure of ours that trying again cannot
    mend (a migration the database refuses): a supervisor must not loop on it.
    """

    retryable: bool = True


def one_line(exc: BaseException) -> str:
    """The error's first line (database errors add the statement on lines of their own)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")
