"""Delivery status notifications (RFC 3464) and VERP return paths of our own e-mails.

e-mail channel (a mail found automatic) -> **parse_dsn** -> a ``Bounce``
(per recipient: action, status, diagnostic; the Message-ID of the returned
message) -> the channel asks the store whether it bounces one of our
acknowledgements.

A DSN is a ``multipart/report; report-type=delivery-status`` (RFC 6522):
a human-readable part, a ``message/delivery-status`` part (one block of
per-message fields, then one block per recipient), and the returned message
(``message/rfc822``) or its headers (``text/rfc822-headers``). The stdlib's
parser already splits ``message/delivery-status`` into its blocks and
parses the returned message; this module reads the fields.

VERP (variable envelope return path): an acknowledgement goes out from
``bounces+<token>@domain`` (``verp_address``), so the bounce is addressed to
that address and names the acknowledgement (``verp_token``), whatever the
reporting server quotes of the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, Parser
from email.utils import getaddresses

from normalizer.email.headers import message_ids
from normalizer.email.mimepolicy import POLICY

REPORT_TYPE = "delivery-status"
STATUS_PART = "message/delivery-status"
RETURNED_TYPES = ("message/rfc822", "text/rfc822-headers")
FAILED = "failed"
# Where a delivered report says whom it was for (the final MTA adds the last two).
ADDRESSED_TO = ("To", "Delivered-To", "X-Original-To")
# A VERP token is ours: letters, digits and dashes (a uuid), nothing an MTA would rewrite.
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block: what the reporting server did for that recipient."""

    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # 5.1.1
    final_recipient: str | None
    diagnostic: str | None


@dataclass(frozen=True)
class Bounce:
    """A parsed DSN."""

    recipients: tuple[RecipientStatus, ...]
    # Message-ID of the returned message (or of its returned headers).
    original_message_id: str | None
    reporting_mta: str | None
    # Whom the report is addressed to (To, Delivered-To, X-Original-To): a VERP address.
    addressed_to: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """A recipient could not be reached for good (``Action: failed``)."""
        return any(item.action == FAILED for item in self.recipients)

    @property
    def status(self) -> str | None:
        """The status code of the first failed recipient (``5.1.1``)."""
        return next((item.status for item in self.recipients if item.action == FAILED), None)


def parse_dsn(raw: bytes) -> Bounce | None:
    """The delivery report in ``raw``, or ``None`` when it is not an RFC 3464 DSN."""
    message = BytesParser(policy=POLICY).parsebytes(raw)
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != REPORT_TYPE:
        return None
    blocks: list[Message] = []
    original: str | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == STATUS_PART and not blocks:
            payload = part.get_payload()
            blocks = [item for item in payload if isinstance(item, Message)] if payload else []
        elif kind in RETURNED_TYPES and original is None:
            original = _returned_message_id(part)
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    return Bounce(
        recipients=tuple(_recipient(block) for block in per_recipient),
        original_message_id=original,
        reporting_mta=_typed_value(per_message.get("Reporting-MTA")),
        addressed_to=_addressed_to(message),
    )


def _addressed_to(message: Message) -> tuple[str, ...]:
    values = [str(value) for name in ADDRESSED_TO for value in message.get_all(name, [])]
    return tuple(dict.fromkeys(address for _name, address in getaddresses(values) if address))


def _recipient(block: Message) -> RecipientStatus:
    return RecipientStatus(
        action=str(block.get("Action", "")).strip().lower(),
        status=str(block.get("Status", "")).strip().split(" ")[0],
        final_recipient=_typed_value(block.get("Final-Recipient")),
        diagnostic=_typed_value(block.get("Diagnostic-Code")),
    )


def _typed_value(value: object) -> str | None:
    """``rfc822; someone@example.org`` -> ``someone@example.org`` (RFC 3464 address-type)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    _kind, separator, rest = text.partition(";")
    return (rest if separator else text).strip() or None


def _returned_message_id(part: Message) -> str | None:
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        returned = payload[0] if isinstance(payload, list) and payload else None
    else:
        text = part.get_payload(decode=True)
        headers = text.decode("utf-8", "replace") if isinstance(text, bytes) else ""
        returned = Parser(policy=POLICY).parsestr(headers, headersonly=True)
    if not isinstance(returned, Message):
        return None
    found = message_ids(str(returned.get("Message-ID", "")))
    return found[0] if found else None


def verp_address(base: str, token: str) -> str:
    """``bounces@example.org`` + ``token`` -> ``bounces+token@example.org``."""
    local, _, domain = base.rpartition("@")
    return f"{local}+{token}@{domain}"


def verp_token(base: str, address: str) -> str | None:
    """The token of a VERP address made from ``base``; ``None`` for any other address."""
    local, _, domain = base.strip().lower().rpartition("@")
    candidate = address.strip().strip("<>").lower()
    their_local, at, their_domain = candidate.rpartition("@")
    if not at or their_domain != domain or not their_local.startswith(f"{local}+"):
        return None
    token = their_local[len(local) + 1 :]
    return token if token and set(token) <= _TOKEN_CHARS else None
