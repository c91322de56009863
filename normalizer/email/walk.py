"""The MIME tree walked once: body text, attachments and forwarded messages.

Raw mail -> limits -> stdlib parser -> **walk** -> parse assembles the result.

Rules, in the spirit of Zulip's ``extract_body``:
- ``multipart/alternative``: the first non-empty ``text/plain`` is the text,
  else the last alternative (the richest, usually HTML); images inside any
  alternative are still attachments.
- ``multipart/related``: the root part is the text, the rest (``cid:``
  images) are inline attachments.
- other multiparts (``mixed``, ``report``, unknown): every inline text part
  in order is text, everything else is an attachment.
- ``message/rfc822``: a forwarded or attached mail, walked on its own; its
  text is kept apart (``Forwarded``) so the caller decides whether it is part
  of the body, and its attachments join the message's list.
Parts and depth are counted on the way down (``PartBudget``), so a tree
past the limits is rejected before it is walked further.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from normalizer.email.attachments import ParsedAttachment, build_attachment
from normalizer.email.charsets import decode_bytes, decode_encoded_words, decode_raw_header
from normalizer.email.headers import address_header, header_text
from normalizer.email.html import html_to_text
from normalizer.email.limits import PartBudget

_TEXT_TYPES = ("text/plain", "text/html")
_MESSAGE_TYPES = ("message/rfc822", "message/global")


@dataclass
class Forwarded:
    """A message found inside the message (``message/rfc822``)."""

    sender: str | None
    date: str | None
    subject: str | None
    to: str | None
    text: str
    inline: bool


@dataclass
class Collected:
    """What one walk gathers for one message level."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (content type, text)
    forwards: list[Forwarded] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(text for _type, text in self.texts if text.strip())


def walk_message(message: Message, budget: PartBudget) -> Collected:
    """Walk ``message`` (the top level or a forwarded one) and gather its content."""
    collected = Collected()
    _visit(message, 0, budget, collected, want_text=True)
    return collected


def _visit(
    part: Message,
    depth: int,
    budget: PartBudget,
    out: Collected,
    *,
    want_text: bool,
    new_part: bool = True,
) -> None:
    budget.enter(depth, new_part=new_part)
    content_type = part.get_content_type()
    if content_type in _MESSAGE_TYPES:
        _visit_forward(part, depth, budget, out)
    elif part.get_content_maintype() == "multipart" and part.is_multipart():
        _visit_multipart(part, content_type, depth, budget, out, want=want_text)
    elif _is_body_text(part, content_type):
        if want_text:  # else an alternative not chosen, or a related resource
            out.texts.append((content_type, _part_text(part, content_type, budget.parts, out)))
    else:
        out.attachments.append(_attachment(part, content_type))


def _visit_multipart(
    part: Message, content_type: str, depth: int, budget: PartBudget, out: Collected, *, want: bool
) -> None:
    children = [child for child in part.get_payload() if isinstance(child, Message)]
    if content_type == "multipart/alternative":
        chosen = _choose_alternative(children)
        for index, child in enumerate(children):
            _visit(child, depth + 1, budget, out, want_text=want and index == chosen)
    elif content_type == "multipart/related" and children:
        root = _related_root(part, children)
        for child in children:
            # Non-root parts are resources (cid: images), never body text.
            _visit(child, depth + 1, budget, out, want_text=want and child is root)
    else:
        for child in children:
            _visit(child, depth + 1, budget, out, want_text=want)


def _choose_alternative(children: list[Message]) -> int:
    for index, child in enumerate(children):
        if child.get_content_type() == "text/plain" and _raw_payload(child).strip():
            return index
    return len(children) - 1


def _related_root(part: Message, children: list[Message]) -> Message:
    start = part.get_param("start")
    if isinstance(start, str):
        for child in children:
            if (child.get("Content-ID") or "").strip() == start.strip():
                return child
    return children[0]


def _visit_forward(part: Message, depth: int, budget: PartBudget, out: Collected) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        out.attachments.append(_attachment(part, part.get_content_type()))
        return
    nested = Collected()
    # The inner message is the same part as its message/rfc822 wrapper, one level down.
    _visit(inner, depth + 1, budget, nested, want_text=True, new_part=False)
    out.attachments.extend(nested.attachments)
    out.forwards.append(
        Forwarded(
            sender=_address_line(inner, "From"),
            date=header_text(inner, "Date"),
            subject=header_text(inner, "Subject"),
            to=_address_line(inner, "To"),
            text=nested.text,
            inline=part.get_content_disposition() == "inline",
        )
    )
    out.forwards.extend(nested.forwards)
    out.notes.extend(nested.notes)


def _address_line(message: Message, name: str) -> str | None:
    pairs = address_header(message, name)
    if not pairs:
        return header_text(message, name)
    return ", ".join(f"{display} <{address}>" if display else address for display, address in pairs)


def _is_body_text(part: Message, content_type: str) -> bool:
    if content_type not in _TEXT_TYPES:
        return False
    disposition = part.get_content_disposition()
    if disposition == "attachment":
        return False
    return disposition == "inline" or not part.get_filename()


def _raw_payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message, content_type: str, number: int, out: Collected) -> str:
    charset = part.get_param("charset")
    declared = charset if isinstance(charset, str) else None
    text, note = decode_bytes(_raw_payload(part), declared)
    if note:
        out.notes.append(f"part {number}: {note}")
    return html_to_text(text) if content_type == "text/html" else text


def _attachment(part: Message, content_type: str) -> ParsedAttachment:
    disposition = part.get_content_disposition()
    content_id = part.get("Content-ID")
    inline = disposition == "inline" or (content_id is not None and disposition != "attachment")
    return build_attachment(
        data=_attachment_bytes(part),
        filename=_filename(part),
        declared_type=content_type,
        inline=inline,
        content_id=str(content_id) if content_id is not None else None,
    )


def _attachment_bytes(part: Message) -> bytes:
    if not part.is_multipart():
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    payload = part.get_payload()
    if isinstance(payload, list):  # message/delivery-status and other message/* bodies
        return b"\n".join(item.as_bytes() for item in payload if isinstance(item, Message))
    return str(payload or "").encode("utf-8", "surrogateescape")


def _filename(part: Message) -> str | None:
    name = part.get_filename()
    if not name:
        return None
    name, _notes = decode_raw_header(str(name))
    return decode_encoded_words(name) if "=?" in name else name
