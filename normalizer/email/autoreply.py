"""Auto-replies, out-of-office notices and bounces told apart from complaints.

Raw mail -> parse -> **autoreply** -> the caller stores it but does not
publish it as a complaint (and never acknowledges it: answering an
auto-reply is how mail loops start).

The checks are data, in order of reliability: RFC 3834 ``Auto-Submitted``,
``Precedence``, the vendor ``X-Autoreply``/``X-Autorespond`` headers, a null
return path (RFC 5321 bounces), a ``multipart/report`` (RFC 6522), a
mailer-daemon sender, and last a subject pattern. Subject patterns are
anchored and need a colon or the end of the subject after the keyword, so
"Absence de remboursement" stays a complaint while "Absence : Karim" does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_DAEMON_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "maildaemon"})
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:"
    r"r[ée]ponse automatique|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply"
    r"|out of (?:the )?office|absence(?: du bureau)?|absent(?: du bureau)?|hors du bureau"
    r"|respuesta autom[áa]tica|fuera de la oficina|ausencia|رد تلقائي|خارج المكتب"
    r"|undeliverable|undelivered mail(?: returned to sender)?|non remis|non distribuable"
    r"|mail delivery (?:failure|failed|system|subsystem)|delivery status notification"
    r"|returned mail|failure notice|delivery failure|notification d'[ée]tat de remise"
    r")\s*(?::|$|\()",
    re.I,
)

Check = Callable[[Mapping[str, str], str | None], str | None]


def _auto_submitted(headers: Mapping[str, str], _envelope: str | None) -> str | None:
    value = headers.get("Auto-Submitted", "").split(";")[0].strip().lower()
    return f"Auto-Submitted: {value}" if value and value != "no" else None


def _precedence(headers: Mapping[str, str], _envelope: str | None) -> str | None:
    value = headers.get("Precedence", "").strip().lower()
    return f"Precedence: {value}" if value in _BULK_PRECEDENCE else None


def _vendor_autoreply(headers: Mapping[str, str], _envelope: str | None) -> str | None:
    for name in ("X-Autoreply", "X-Autorespond"):
        if headers.get(name, "").strip().lower() not in ("", "no", "false", "0"):
            return f"{name} header"
    return None


def _null_return_path(headers: Mapping[str, str], envelope: str | None) -> str | None:
    path = envelope if envelope is not None else headers.get("Return-Path")
    if path is not None and path.strip().strip("<>").strip() == "":
        return "null return path <>"
    return None


def _delivery_report(headers: Mapping[str, str], _envelope: str | None) -> str | None:
    content_type = headers.get("Content-Type", "").lower()
    if not content_type.startswith("multipart/report"):
        return None
    kind = re.search(r"report-type\s*=\s*\"?([\w-]+)", content_type)
    return f"multipart/report ({kind.group(1) if kind else 'unknown type'})"


def _daemon_sender(headers: Mapping[str, str], _envelope: str | None) -> str | None:
    sender = headers.get("From", "").lower()
    local = re.search(r"([\w.+-]+)@", sender)
    if local and local.group(1) in _DAEMON_LOCAL_PARTS:
        return f"sender is {local.group(1)}"
    return None


def _subject(headers: Mapping[str, str], _envelope: str | None) -> str | None:
    subject = headers.get("Subject", "")
    match = _AUTO_SUBJECT.match(subject)
    return f"subject: {match.group(0).strip(' :(')}" if match else None


AUTO_REPLY_CHECKS: tuple[Check, ...] = (
    _auto_submitted,
    _precedence,
    _vendor_autoreply,
    _null_return_path,
    _delivery_report,
    _daemon_sender,
    _subject,
)


def detect_auto_reply(headers: Mapping[str, str], envelope_sender: str | None = None) -> str | None:
    """Why this message is automatic (first matching check), or None for a human message.

    ``headers`` are decoded headers by canonical name (``ParsedEmail.headers``);
    ``envelope_sender`` is the SMTP ``MAIL FROM`` when known (``""`` for ``<>``),
    which is better evidence than a Return-Path header.
    """
    for check in AUTO_REPLY_CHECKS:
        reason = check(headers, envelope_sender)
        if reason:
            return reason
    return None
