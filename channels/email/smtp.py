"""SMTP receiver: the e-mail channel's protocol edge for a relaying mail server or a direct MX.

Flow: sending MTA --SMTP--> **channels.email.smtp** --> ``channels.email.intake.ingest_mail``
(evidence blob + complaint + outbox row, one commit) --> the reply.

The edge is thin: it refuses what it can refuse early (unknown recipients
``550``, a client outside the allowed networks ``554``, a declared or actual
size over ``email_max_bytes`` ``552``, connection N+1 ``421``), then hands the
raw bytes to ``ingest_mail`` in a worker thread and answers ``250`` only after
that call returned, that is after the durable commit. Our own failures
(store down, normalizer broken, anything unexpected) answer ``451`` with no
internal detail, so the sender keeps the message and retries; dedup in
``ingest_mail`` makes the retry harmless. Every reply this server composes is
a named constant below, and outcomes and exceptions become replies in one
place (``reply_for_result``, ``reply_for_error``).

Received time is ours: the moment DATA completed, which starts the legal clock.
Who may deliver to which address is decided in ``channels.email.smtp_policy``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.intake import MailArrival, MailOutcome, MailResult, ingest_mail
from channels.email.smtp_policy import SmtpConfigError, SmtpPolicy, tls_context
from gateway.lib.services import Services
from normalizer.email.errors import (
    HEADER_TOO_LARGE,
    MALFORMED,
    TOO_DEEP,
    TOO_LARGE,
    TOO_MANY_PARTS,
)

log = logging.getLogger("intake.smtp")

# -- replies: every answer this server composes, in one place ----------------
# (aiosmtpd itself answers syntax errors, SIZE declared too large at MAIL,
# "552 Error: Too much mail data" for an undeclared oversize, and TLS errors.)
GREETING_IDENT: Final = "ESMTP"  # the banner names no software or version
SENDER_OK: Final = "250 2.1.0 Sender OK"
RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
ACCEPTED: Final = "250 2.0.0 Accepted"
ACCEPTED_COMPLAINT: Final = "250 2.0.0 Accepted as complaint {reference}"
BAD_SENDER_SYNTAX: Final = "553 5.1.7 Sender address is not valid UTF-8"
BAD_RECIPIENT_SYNTAX: Final = "553 5.1.3 Recipient address is not valid UTF-8"
UNKNOWN_RECIPIENT: Final = "550 5.1.1 Recipient address rejected: not an address of this service"
CLIENT_REFUSED: Final = "554 5.7.1 Client host rejected: access denied"
MESSAGE_TOO_BIG: Final = "552 5.3.4 Message too big: {reason}"
CONTENT_REJECTED: Final = "554 5.6.0 Message rejected: {reason}"
TEMPORARY_FAILURE: Final = "451 4.3.0 Temporary local problem, please try again later"
TOO_MANY_CONNECTIONS: Final = "421 {hostname} Too many connections, try again later"
SHUTTING_DOWN: Final = "421 {hostname} Service shutting down, try again later"

# Which reply the sender gets for each reason ``normalizer.email`` rejects a message.
REJECTION_REPLIES: Final = {
    TOO_LARGE: MESSAGE_TOO_BIG,
    HEADER_TOO_LARGE: MESSAGE_TOO_BIG,
    TOO_MANY_PARTS: CONTENT_REJECTED,
    TOO_DEEP: CONTENT_REJECTED,
    MALFORMED: CONTENT_REJECTED,
}

STOP_POLL_SECONDS = 0.2
SHUTDOWN_GRACE_SECONDS = 10.0
# Commits queue on one writer lock on SQLite and on a pool of 10 connections on
# PostgreSQL: more threads than that only add contention (bench/smtp_bench.py).
MAX_INGEST_THREADS = 8


def reply_for_result(result: MailResult) -> str:
    """The reply for what ``ingest_mail`` did with a message (it is durable by now)."""
    if result.outcome is MailOutcome.COMPLAINT:
        return ACCEPTED_COMPLAINT.format(reference=result.reference)
    if result.outcome is MailOutcome.AUTO_REPLY:
        return ACCEPTED
    template = REJECTION_REPLIES.get(result.reason_code or MALFORMED, CONTENT_REJECTED)
    return template.format(reason=_one_line(result.reason or "malformed message"))


def reply_for_error(error: BaseException) -> str:
    """Our fault, whatever it was: a retryable reply that says nothing about us."""
    log.error("mail not accepted (temporary failure): %s", type(error).__name__, exc_info=error)
    return TEMPORARY_FAILURE


def _one_line(text: str) -> str:
    """Reply text must be one printable ASCII line whatever the reason says."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "replace").decode("ascii")[:200]


def _utf8(address: str) -> bool:
    """aiosmtpd keeps undecodable bytes as surrogates; such an address cannot be stored."""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _peer_host(peer: Any) -> str:
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


# -- the aiosmtpd handler: only the hooks we need ------------------------------
class IntakeHandler:
    """Recipient and client checks, then the durable hand-off of DATA."""

    def __init__(self, services: Services, policy: SmtpPolicy, executor: ThreadPoolExecutor):
        self.services = services
        self.policy = policy
        self.executor = executor
        self.in_flight = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # We authenticate nobody: do not advertise mechanisms that always fail.
        return [line for line in responses if not line[4:].startswith("AUTH")]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        peer = _peer_host(session.peer)
        if not self.policy.allows_peer(peer):
            log.warning("refused mail from %s: not in INTAKE_SMTP_ALLOWED_NETWORKS", peer)
            return CLIENT_REFUSED
        if not _utf8(address):
            return BAD_SENDER_SYNTAX
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return SENDER_OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not _utf8(address):
            return BAD_RECIPIENT_SYNTAX
        if not self.policy.accepts_recipient(address):
            return UNKNOWN_RECIPIENT
        if address not in envelope.rcpt_tos:  # one message, however often it is named
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrival = arrival_for(session, envelope, datetime.now(UTC))
        self.in_flight += 1
        try:
            future = self.executor.submit(ingest_mail, self.services, arrival)
            result = await asyncio.wrap_future(future)
        except Exception as error:
            return reply_for_error(error)
        finally:
            self.in_flight -= 1
        return reply_for_result(result)

    async def handle_exception(self, error: Exception) -> str:
        # Called by aiosmtpd for anything a hook raised; never "500 <exception text>".
        return reply_for_error(error)


def arrival_for(session: Session, envelope: Envelope, received_at: datetime) -> MailArrival:
    """The message as it reached us: bytes unchanged, envelope in the source ids."""
    sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
    return MailArrival(
        raw=bytes(envelope.original_content or b""),
        received_at=received_at,
        source_ids={
            "smtp_peer": _peer_host(session.peer),
            "mail_from": sender,
            "rcpt_to": list(envelope.rcpt_tos),
        },
        envelope_sender=sender,
    )


# -- the listening server and its sessions -------------------------------------
class _Session(SMTP):
    """aiosmtpd's session, which tells the server when its connection ends."""

    def __init__(self, handler: IntakeHandler, on_close: Any, **options: Any) -> None:
        super().__init__(handler, **options)
        self._on_close = on_close

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._on_close(self)


class _Refusal(asyncio.Protocol):
    """A connection we will not serve: one greeting-level reply, then close (RFC 5321 3.8)."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.reply.encode("ascii") + b"\r\n")
        transport.close()


class SmtpServer:
    """One listening socket, its sessions (at most ``smtp_max_connections``) and commit threads."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        if settings.smtp_port is None:
            raise SmtpConfigError("INTAKE_SMTP_PORT is not set")
        self.settings = settings
        self.port: int = settings.smtp_port
        self.executor = ThreadPoolExecutor(
            max_workers=min(settings.smtp_max_connections, MAX_INGEST_THREADS),
            thread_name_prefix="smtp-ingest",
        )
        self.handler = IntakeHandler(services, SmtpPolicy.from_settings(settings), self.executor)
        self.tls = tls_context(settings)
        self.sessions: set[_Session] = set()
        self.closing = False
        self._server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # reuse_port: several receivers may listen on one port, the kernel
        # spreading connections among them (one receiver uses one core).
        self._server = await loop.create_server(
            self._protocol, self.settings.smtp_host, self.port, reuse_address=True, reuse_port=True
        )
        log.info(
            "SMTP receiver listening on %s:%s (STARTTLS %s, at most %s connections)",
            self.settings.smtp_host,
            self.port,
            "offered" if self.tls else "off",
            self.settings.smtp_max_connections,
        )

    def _protocol(self) -> asyncio.Protocol:
        hostname = self.settings.smtp_hostname
        if self.closing:
            return _Refusal(SHUTTING_DOWN.format(hostname=hostname))
        if len(self.sessions) >= self.settings.smtp_max_connections:
            log.warning("connection refused: %s sessions open", len(self.sessions))
            return _Refusal(TOO_MANY_CONNECTIONS.format(hostname=hostname))
        session = _Session(
            self.handler,
            self.sessions.discard,
            data_size_limit=self.settings.email_max_bytes,
            enable_SMTPUTF8=True,
            hostname=hostname,
            ident=GREETING_IDENT,
            tls_context=self.tls,
            loop=asyncio.get_running_loop(),
        )
        self.sessions.add(session)
        return session

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop listening, let running commits answer, then say 421 to idle sessions."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.handler.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        goodbye = SHUTTING_DOWN.format(hostname=self.settings.smtp_hostname).encode("ascii")
        for session in list(self.sessions):
            transport = session.transport
            if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
                transport.write(goodbye + b"\r\n")
                transport.close()
        # A commit still running past the grace finishes before the process exits
        # (pool threads are joined at exit); its sender retries and dedup finds it.
        self.executor.shutdown(wait=False)
        log.info("SMTP receiver stopped")


def serve_smtp(services: Services, stop: threading.Event) -> None:
    """Worker: serve SMTP on ``smtp_host:smtp_port`` until ``stop`` is set."""
    run_server(SmtpServer(services), stop)


def run_server(server: SmtpServer, stop: threading.Event) -> None:
    """Run an already configured server in this thread until ``stop`` is set."""
    if server.settings.log_level != "DEBUG":
        # aiosmtpd logs every command line at INFO; keep its warnings only.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(_serve(server, stop))


async def _serve(server: SmtpServer, stop: threading.Event) -> None:
    await server.start()
    try:
        while not stop.is_set():
            await asyncio.sleep(STOP_POLL_SECONDS)
    finally:
        await server.stop()
