"""A real SMTP relay for tests: aiosmtpd on localhost, keeping what it receives.

The acknowledgement worker talks to it with the stdlib ``smtplib`` exactly
as it would talk to the production relay. A test can make it refuse some
recipients for good (550) or for now (451), and read every message it took
(envelope and parsed headers and parts).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.peers.processes import free_port

REFUSED_FOR_GOOD = "550 5.1.1 Mailbox unavailable"
REFUSED_FOR_NOW = "451 4.3.0 Try again later"


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


@dataclass
class CaptureHandler:
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> reply
    received: list[Captured] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.lock:
            self.received.append(
                Captured(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content))
            )
        return "250 2.0.0 Queued"

    def messages(self) -> list[Captured]:
        with self.lock:
            return list(self.received)


@dataclass
class SmtpCapture:
    handler: CaptureHandler
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def messages(self) -> list[Captured]:
        return self.handler.messages()


@contextmanager
def smtp_capture(port: int | None = None) -> Iterator[SmtpCapture]:
    """A running capture server (on ``port``, else a free one); stopped when the block ends."""
    handler = CaptureHandler()
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpCapture(handler=handler, port=port)
    finally:
        controller.stop()
