"""Raw RFC 822 bytes to one structured, clean ``ParsedEmail``.

Flow: IMAP poller / SMTP receiver (raw bytes already stored as evidence)
-> **parse_email** -> the e-mail channel builds the ``ComplaintMessage``.

Pure: no database, no network, no blob store. The steps, in order: check
limits on the raw bytes, parse with ``email.policy.default`` (``mimepolicy``), walk the MIME
tree, decode headers, decide what the body is, strip quotes and signature,
find references, detect auto-replies, authenticate the sender's domain and
classify the origin (``authentication``: the DNS lookup of a DKIM key is the
one call outside this process, made only when the policy asks for it).

Customer identity: ``from_name``/``from_address`` are the From header as
written. ``customer_name``/``customer_address`` are who to answer: the From
address, except when From is a no-reply forwarder (``no-reply@``,
``ne-pas-repondre@``, ``notifications@`` …) and a Reply-To is present, in which
case the first Reply-To wins. A forward by Bank Al-Maghrib or the CMMB keeps
the authority as customer contact: the origin field says who forwarded it.
The origin is an authority only when the mail is authenticated (S12):
``claimed_origin`` is what the From header says, ``origin`` what we believe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import MessageError
from email.message import Message
from email.parser import BytesParser

from normalizer.email.attachments import ParsedAttachment
from normalizer.email.authentication import Authentication, AuthPolicy, authenticate
from normalizer.email.autoreply import detect_auto_reply
from normalizer.email.errors import MALFORMED, EmailError, EmailInternalError, EmailRejected
from normalizer.email.headers import (
    address_header,
    header_text,
    message_ids,
    parse_date,
    useful_headers,
)
from normalizer.email.limits import EmailLimits, PartBudget, precheck
from normalizer.email.mimepolicy import POLICY
from normalizer.email.origin import CUSTOMER, classify_origin
from normalizer.email.quotes import clean_body, normalize_whitespace
from normalizer.email.walk import Collected, Forwarded, walk_message
from normalizer.reference import find_references

__all__ = ["EmailLimits", "ParsedAttachment", "ParsedEmail", "parse_email"]

_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|rép|rep|رد)\s*:\s*)*(?:fwd?|tr|rv|wg|enc|إعادة توجيه|توجيه)\s*:", re.I
)
_NO_REPLY = re.compile(
    r"^(?:no-?reply|do-?not-?reply|donotreply|ne-?pas-?r[ée]pondre|nepasrepondre"
    r"|notifications?|mailer|bounces?)(?:[+.-].*)?@",
    re.I,
)


@dataclass(frozen=True)
class ParsedEmail:
    """One e-mail, decoded and cleaned; nothing in it needs the raw bytes again."""

    message_id: str | None
    subject: str
    from_name: str | None
    from_address: str | None
    reply_to: str | None
    to: tuple[str, ...]
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    body: str
    full_text: str
    body_source: str
    attachments: tuple[ParsedAttachment, ...]
    auto_reply: str | None
    references_found: tuple[str, ...]
    charset_repairs: tuple[str, ...]
    headers: dict[str, str]
    # Additions to the agreed interface:
    cc: tuple[str, ...] = ()
    customer_name: str | None = None
    customer_address: str | None = None
    origin: str = CUSTOMER
    is_forward: bool = False
    # Messages attached whole (message/rfc822): what the sender forwards.
    forward_count: int = 0
    defects: tuple[str, ...] = ()
    # What the From header claims, and whether the mail proves it (S12).
    claimed_origin: str = CUSTOMER
    authentication: Authentication = field(default_factory=Authentication)


def parse_email(
    raw: bytes,
    limits: EmailLimits | None = None,
    *,
    envelope_sender: str | None = None,
    origin_rules: Mapping[str, Sequence[str]] | None = None,
    auth_policy: AuthPolicy | None = None,
) -> ParsedEmail:
    """Parse and normalize one raw message.

    ``envelope_sender`` is the SMTP ``MAIL FROM`` when the caller knows it
    (``""`` for the null path ``<>``); ``origin_rules`` as for
    ``classify_origin``; ``auth_policy`` what authenticates a mail (default:
    nothing does, so no authority origin and no network). Raises
    ``EmailRejected`` (sender's fault: over a limit, malformed) or
    ``EmailInternalError`` (ours: retry later).
    """
    limits = limits or EmailLimits()
    precheck(raw, limits)
    try:
        message = BytesParser(policy=POLICY).parsebytes(raw)
        return _build(raw, message, PartBudget(limits), envelope_sender, origin_rules, auth_policy)
    except EmailError:
        raise
    except (RecursionError, MessageError) as error:
        # Nested comments in a header, or a structure the stdlib cannot follow.
        reason = f"the message cannot be parsed ({type(error).__name__})"
        raise EmailRejected(MALFORMED, reason) from error
    except Exception as error:
        raise EmailInternalError(f"e-mail normalization failed: {type(error).__name__}") from error


def _build(  # noqa: PLR0917
    raw: bytes,
    message: Message,
    budget: PartBudget,
    envelope_sender: str | None,
    origin_rules: Mapping[str, Sequence[str]] | None,
    auth_policy: AuthPolicy | None,
) -> ParsedEmail:
    notes: list[str] = []
    collected = walk_message(message, budget)
    subject = " ".join((header_text(message, "Subject", notes) or "").split())
    senders = address_header(message, "From")
    from_name, from_address = senders[0] if senders else (None, None)
    reply_to = address_header(message, "Reply-To")
    customer_name, customer_address = _customer(from_name, from_address, reply_to)
    claimed_origin = classify_origin(from_address, origin_rules)
    verdict = authenticate(raw, message, _ascii_domain(from_address), auth_policy or AuthPolicy())
    origin = claimed_origin if verdict.passed else CUSTOMER
    forward = bool(_FORWARD_SUBJECT.match(subject))
    body, full_text = _assemble(collected, forward, include=forward or origin != CUSTOMER)
    headers = useful_headers(message)
    return ParsedEmail(
        message_id=next(iter(message_ids(header_text(message, "Message-ID"))), None),
        subject=subject,
        from_name=from_name,
        from_address=from_address,
        reply_to=reply_to[0][1] if reply_to else None,
        to=tuple(address for _name, address in address_header(message, "To")),
        date=parse_date(header_text(message, "Date")),
        in_reply_to=next(iter(message_ids(header_text(message, "In-Reply-To"))), None),
        references=message_ids(header_text(message, "References")),
        body=body,
        full_text=full_text,
        body_source=_body_source(collected),
        attachments=tuple(collected.attachments),
        auto_reply=detect_auto_reply(headers, envelope_sender),
        references_found=_references(subject, body, full_text),
        charset_repairs=tuple(notes + collected.notes),
        headers=headers,
        cc=tuple(address for _name, address in address_header(message, "Cc")),
        customer_name=customer_name,
        customer_address=customer_address,
        origin=origin,
        is_forward=forward or bool(collected.forwards and not collected.text.strip()),
        forward_count=len(collected.forwards),
        defects=tuple(sorted({type(defect).__name__ for defect in _all_defects(message)})),
        claimed_origin=claimed_origin,
        authentication=verdict,
    )


def _ascii_domain(address: str | None) -> str | None:
    """The From domain in its ASCII (IDNA) form, as DKIM's ``d=`` is written."""
    if not address or "@" not in address:
        return None
    domain = address.strip().strip("<>").rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain or None


def _customer(
    name: str | None, address: str | None, reply_to: list[tuple[str | None, str]]
) -> tuple[str | None, str | None]:
    if reply_to and (address is None or _NO_REPLY.match(address)):
        return reply_to[0]
    return name, address


def _assemble(collected: Collected, forward: bool, include: bool) -> tuple[str, str]:
    """(body, full_text). Forwarded messages join the body when the mail is a
    forward (subject prefix, an authority forwarding, or no text of its own)."""
    own = collected.text
    include = include or not own.strip()
    full_parts = [own] + [_forward_block(item, item.text) for item in collected.forwards]
    full_text = normalize_whitespace("\n\n".join(part for part in full_parts if part.strip()))
    # A forward's history is the complaint itself: nothing is stripped from it.
    tidy = normalize_whitespace if forward else clean_body
    body_parts = [tidy(own)]
    if include:
        body_parts += [_forward_block(item, tidy(item.text)) for item in collected.forwards]
    return normalize_whitespace("\n\n".join(part for part in body_parts if part.strip())), full_text


def _forward_block(item: Forwarded, text: str) -> str:
    lines = ["---------- Forwarded message ----------"]
    for label, value in (("From", item.sender), ("Date", item.date), ("Subject", item.subject)):
        if value:
            lines.append(f"{label}: {value}")
    if item.to:
        lines.append(f"To: {item.to}")
    return "\n".join(lines) + "\n\n" + text


def _body_source(collected: Collected) -> str:
    for content_type, text in collected.texts:
        if text.strip():
            return content_type
    return "message/rfc822" if collected.forwards else "none"


def _references(subject: str, body: str, full_text: str) -> tuple[str, ...]:
    # The quoted acknowledgement (only in full_text) still links a bare reply.
    found: list[str] = []
    for text in (subject, body, full_text):
        found += [ref for ref in find_references(text) if ref not in found]
    return tuple(found)


def _all_defects(message: Message) -> list[object]:
    defects: list[object] = []
    for part in message.walk():
        defects.extend(part.defects)
    return defects
