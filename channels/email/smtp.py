"""SMTP receiver: the e-mail channel's protocol edge for a relaying mail server or a direct MX.

Flow: sending MTA --SMTP--> **channels.email.smtp** --> ``channels.email.staged.mail_capture``
-> ``gateway.lib.capture_queue`` (one writer thread: the ``intake`` rows of
whatever is queued, one group commit) --> ``250 Queued as <reference>``;
a normalizer runner reads the mail afterwards (``staged.normalize_mail_captures``).

The edge is thin: it refuses what it can refuse early (a client outside the
allowed networks ``554`` in place of the greeting, connection N+1 overall or
from one address ``421``, unknown recipients ``550``, a declared or actual
size over ``email_max_bytes`` ``552``, a sender or client over its hourly
message budget ``450 4.7.1``: SQL, in a worker thread), then queues the
message's capture and answers ``250`` only once the writer's commit holding
it returned, that is after it is durable. It parses nothing: a malformed
mail, one over the header or part limits, an auto-reply are found by the
runner (quarantine with the reason, an event), after the sender was told
``250``.

A session costs little while it lasts (S9, S10): it is closed after
``smtp_idle_timeout`` seconds of silence, after ``smtp_max_commands``
commands or ``smtp_max_noops`` NOOP-like ones (``421``), and its DATA goes
to a ``DataSpool`` (a file past a small threshold, read back in a worker
thread). Our own failures
(store down, anything unexpected) answer ``451`` with no
internal detail, so the sender keeps the message and retries; the capture's
dedup key (the bytes' hash) makes the retry harmless. Every reply this
server composes is a named constant below, and exceptions become replies in
one place (``reply_for_error``).

Received time is ours: the moment DATA completed, which starts the legal clock.
Who may deliver to which address is decided in ``channels.email.smtp_policy``,
and so is whether the peer's ``Authentication-Results`` headers are believed
(S12): only from a peer within ``smtp_allowed_networks`` (our own MX); on a
public receiver anyone could have written them, and only DKIM verified here counts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.smtp_limits import MessageBudgets
from channels.email.smtp_policy import SmtpConfigError, SmtpPolicy, tls_context
from channels.email.spool import DataSpool, spool_folder, sweep
from channels.email.staged import mail_capture
from gateway.lib.capture_queue import CaptureQueue
from gateway.lib.services import Services

log = logging.getLogger("intake.smtp")

# -- replies: every answer this server composes, in one place ----------------
# (aiosmtpd itself answers syntax errors, SIZE declared too large at MAIL,
# "552 Error: Too much mail data" for an undeclared oversize, and TLS errors.)
GREETING_IDENT: Final = "ESMTP"  # the banner names no software or version
SENDER_OK: Final = "250 2.1.0 Sender OK"
RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
ACCEPTED: Final = "250 2.0.0 Accepted"
# The edge's reply: the mail is captured (durable); a runner reads it next.
QUEUED: Final = "250 2.0.0 Queued as {reference}"
BAD_SENDER_SYNTAX: Final = "553 5.1.7 Sender address is not valid UTF-8"
BAD_RECIPIENT_SYNTAX: Final = "553 5.1.3 Recipient address is not valid UTF-8"
UNKNOWN_RECIPIENT: Final = "550 5.1.1 Recipient address rejected: not an address of this service"
CLIENT_REFUSED: Final = "554 5.7.1 Client host rejected: access denied"
TEMPORARY_FAILURE: Final = "451 4.3.0 Temporary local problem, please try again later"
TOO_MANY_CONNECTIONS: Final = "421 {hostname} Too many connections, try again later"
TOO_MANY_FROM_ADDRESS: Final = (
    "421 {hostname} Too many connections from your address, try again later"
)
CLIENT_REFUSED_GREETING: Final = "554 {hostname} 5.7.1 Client host rejected: access denied"
TOO_MANY_COMMANDS: Final = "421 4.7.0 {hostname} Too many commands, closing connection"
RATE_LIMITED: Final = "450 4.7.1 Too many messages from this {which}, try again later"
DATA_TOO_BIG: Final = "552 5.3.4 Message too big: over the limit of {limit} bytes"
LINE_TOO_LONG: Final = "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)"
DATA_GO_AHEAD: Final = "354 End data with <CR><LF>.<CR><LF>"
SHUTTING_DOWN: Final = "421 {hostname} Service shutting down, try again later"

STOP_POLL_SECONDS = 0.2
SHUTDOWN_GRACE_SECONDS = 10.0
# Commits queue on one writer lock on SQLite and on a pool of 10 connections on
# PostgreSQL: more threads than that only add contention (bench/smtp_bench.py).
MAX_INGEST_THREADS = 8
# Commands that do nothing but keep a session open: they have their own, small budget.
IDLE_COMMANDS: Final = frozenset({"NOOP", "HELP", "VRFY", "EXPN"})
# Messages of the largest size parsed at once (smaller ones: more at once).
MESSAGES_PARSED_AT_ONCE = 2


def reply_for_error(error: BaseException) -> str:
    """Our fault, whatever it was: a retryable reply that says nothing about us."""
    log.error("mail not accepted (temporary failure): %s", type(error).__name__, exc_info=error)
    return TEMPORARY_FAILURE


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
        self.budgets = MessageBudgets(services)
        # Captures are committed by one writer thread, a batch at a time.
        self.captures = CaptureQueue(services.store.captures)
        self.in_flight = 0
        # Parsing holds a message several times over in memory (the stdlib parser's
        # copies): messages wait on disk until their bytes fit in this budget (one
        # message always fits), so memory follows this figure, not the session count.
        self.max_bytes_in_flight = MESSAGES_PARSED_AT_ONCE * services.settings.email_max_bytes
        self.bytes_in_flight = 0
        self._room = asyncio.Condition()

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
        received_at = datetime.now(UTC)
        spool = envelope.spool if isinstance(envelope, SpooledEnvelope) else None
        if spool is None:  # DATA read by aiosmtpd itself: the bytes are in the envelope
            spool = DataSpool(spool_folder(self.services.settings.data_dir), 1 << 62, 0)
            spool.write(bytes(envelope.original_content or b""))
        self.in_flight += 1
        size = spool.size
        try:
            await self._take_room(size)
            try:
                if self.budgets.active or spool.path is not None:  # SQL, or a file to read
                    admit = self._admit
                    future = self.executor.submit(admit, session, envelope, spool, received_at)
                    admitted = await asyncio.wrap_future(future)
                else:
                    admitted = _read(spool)
                if isinstance(admitted, str):  # refused: the reply says why
                    return admitted
                capture = mail_capture(admitted, received_at, source_ids(session, envelope))
                captured = await self.captures.capture(capture)
                return QUEUED.format(reference=captured.reference)
            finally:
                await self._give_room(size)
        except Exception as error:
            return reply_for_error(error)
        finally:
            self.in_flight -= 1

    async def _take_room(self, size: int) -> None:
        def fits() -> bool:
            return (
                not self.bytes_in_flight or self.bytes_in_flight + size <= self.max_bytes_in_flight
            )

        async with self._room:
            await self._room.wait_for(fits)
            self.bytes_in_flight += size

    async def _give_room(self, size: int) -> None:
        async with self._room:
            self.bytes_in_flight -= size
            self._room.notify_all()

    def _admit(
        self, session: Session, envelope: Envelope, spool: DataSpool, received_at: datetime
    ) -> bytes | str:
        """In a worker thread: the hourly budgets, then the bytes; or the refusal's reply."""
        try:
            peer = _peer_host(session.peer)
            over = self.budgets.over(peer, _sender(envelope))
            if over is not None:
                self.budgets.refuse(over, spool, source_ids(session, envelope), received_at)
                return RATE_LIMITED.format(which=over.which)
        except BaseException:
            spool.close()
            raise
        return _read(spool)

    async def handle_exception(self, error: Exception) -> str:
        # Called by aiosmtpd for anything a hook raised; never "500 <exception text>".
        return reply_for_error(error)


def _read(spool: DataSpool) -> bytes:
    """The message's bytes; the spool (and its file, if any) goes: they are the one copy left."""
    try:
        return spool.read()
    finally:
        spool.close()


def _sender(envelope: Envelope) -> str:
    return "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)


def source_ids(session: Session, envelope: Envelope) -> dict[str, Any]:
    return {
        "smtp_peer": _peer_host(session.peer),
        "mail_from": _sender(envelope),
        "rcpt_to": list(envelope.rcpt_tos),
    }


# -- the listening server and its sessions -------------------------------------
class SpooledEnvelope(Envelope):
    """aiosmtpd's envelope, whose DATA is in a ``DataSpool`` instead of ``original_content``."""

    def __init__(self) -> None:
        super().__init__()
        self.spool: DataSpool | None = None


class _Session(SMTP):
    """aiosmtpd's session, with our admission, command budget, idle timeout and DATA spool."""

    def __init__(self, handler: IntakeHandler, server: SmtpServer, **options: Any) -> None:
        settings = server.settings
        super().__init__(handler, timeout=settings.smtp_idle_timeout, **options)
        self._server = server
        self._refused = False
        self._admitted_as: str | None = None
        self._commands = 0
        self._idle_commands = 0
        self._receiving = False  # inside DATA: bytes arriving count as activity
        self._busy = False  # the message is ours now: the client waits for our reply
        self._last_progress = 0.0
        # Every command goes through the budget; aiosmtpd looks them up in this table.
        self._smtp_methods = {
            name: self._budgeted(name, method) for name, method in self._smtp_methods.items()
        }

    def _create_envelope(self) -> Envelope:
        return SpooledEnvelope()

    # -- admission: at connect, before the greeting ------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None or self._original_transport is not None:
            super().connection_made(transport)  # the same session after STARTTLS
            return
        host = _peer_host(transport.get_extra_info("peername"))
        refusal = self._server.admit(host)
        if refusal is not None:
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(refusal.encode("ascii") + b"\r\n")
            transport.close()
            return
        self._admitted_as = host
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            if not self._refused:
                super().connection_lost(error)
        finally:
            host, self._admitted_as = self._admitted_as, None  # released once, however called
            self._server.release(self, host)

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        return super().eof_received()

    # -- time and command budgets ---------------------------------------------------
    def _timeout_cb(self) -> None:
        if self._busy:  # waiting for our commit is not the client's silence
            self._reset_timeout()
            return
        # Inside DATA the clock runs from the last bytes received, not the command.
        if self._receiving:
            quiet = self.loop.time() - self._last_progress
            if quiet < self._timeout_duration:
                self._reset_timeout(self._timeout_duration - quiet)
                return
        log.info("SMTP session closed after %s s of silence", self._timeout_duration)
        super()._timeout_cb()

    def _budgeted(
        self, command: str, method: Callable[[str | None], Awaitable[None]]
    ) -> Callable[[str | None], Awaitable[None]]:
        settings = self._server.settings

        async def run(arg: str | None) -> None:
            self._commands += 1
            self._idle_commands += command in IDLE_COMMANDS
            if (
                self._commands > settings.smtp_max_commands
                or self._idle_commands > settings.smtp_max_noops
            ):
                log.warning("SMTP session closed: over its command budget (%s)", command)
                await self.push(TOO_MANY_COMMANDS.format(hostname=self.hostname))
                if self.transport is not None:
                    self.transport.close()
                return
            await method(arg)

        return run

    # -- DATA into a spool, never whole in memory ----------------------------------
    async def smtp_DATA(self, arg: str | None) -> None:
        """aiosmtpd's DATA (same replies, same checks), the lines going to a ``DataSpool``."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert isinstance(envelope, SpooledEnvelope)
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        spool = self._server.new_spool()
        try:
            await self.push(DATA_GO_AHEAD)
            problem = await self._receive(spool)
            if problem is not None:
                spool.close()
                await self.push(problem)
                self._set_post_data_state()
                return
            envelope.spool = spool
            self._busy = True
            status = await self._call_handler_hook("DATA")
        finally:
            self._busy = False
            spool.close()
        self._set_post_data_state()
        await self.push(status)

    async def _receive(self, spool: DataSpool) -> str | None:
        """Read up to the lone dot; the error reply when the message cannot be taken."""
        limit = self.data_size_limit
        received = 0
        problem: str | None = None
        fragments: list[bytes] = []
        self._receiving, self._last_progress = True, self.loop.time()
        try:
            while self.transport is not None:
                try:
                    line = await self._reader.readuntil(b"\r\n")
                except asyncio.LimitOverrunError as overrun:
                    problem = problem or LINE_TOO_LONG
                    line = await self._reader.read(overrun.consumed)
                self._last_progress = self.loop.time()
                if not fragments and line == b".\r\n":
                    break
                received += len(line)
                if problem is None and limit and received > limit:
                    problem = DATA_TOO_BIG.format(limit=limit)
                fragments.append(line)
                if not line.endswith(b"\r\n"):
                    continue
                whole = b"".join(fragments)
                fragments.clear()
                if problem is None and len(whole) > self.line_length_limit:
                    problem = LINE_TOO_LONG
                if problem is None:
                    spool.write(whole[1:] if whole.startswith(b".") else whole)
                elif spool.size:
                    spool.close()  # nothing more is kept of a message we refuse
        finally:
            self._receiving = False
        return problem


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
        self.per_address: Counter[str] = Counter()
        self.spool_folder = spool_folder(settings.data_dir)
        self.closing = False
        self._server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def admit(self, host: str) -> str | None:
        """At connect: the greeting-level refusal for this client address, or None (admitted)."""
        hostname = self.settings.smtp_hostname
        if not self.handler.policy.allows_peer(host):
            log.warning("refused connection from %s: not in INTAKE_SMTP_ALLOWED_NETWORKS", host)
            return CLIENT_REFUSED_GREETING.format(hostname=hostname)
        if self.per_address[host] >= self.settings.smtp_max_connections_per_address:
            log.warning(
                "refused connection from %s: %s sessions open", host, self.per_address[host]
            )
            return TOO_MANY_FROM_ADDRESS.format(hostname=hostname)
        self.per_address[host] += 1
        return None

    def release(self, session: _Session, host: str | None) -> None:
        self.sessions.discard(session)
        if host is not None:
            self.per_address[host] -= 1
            if self.per_address[host] <= 0:
                del self.per_address[host]

    def new_spool(self) -> DataSpool:
        return DataSpool(
            self.spool_folder,
            self.settings.smtp_spool_threshold_bytes,
            self.handler.services.store.complaints.refused_head_bytes,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sweep(self.spool_folder)
        if self.settings.trusted_authserv_ids.strip() and not self.handler.policy.networks:
            log.warning(
                "INTAKE_TRUSTED_AUTHSERV_IDS is set but the SMTP receiver is public"
                " (INTAKE_SMTP_ALLOWED_NETWORKS empty): Authentication-Results headers"
                " are ignored on SMTP; only DKIM verified here authenticates a mail"
            )
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
            self,
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
        # What the writer holds is committed before the process goes (as for a pool thread).
        await asyncio.get_running_loop().run_in_executor(None, self.handler.captures.close)
        log.info("SMTP receiver stopped")


def serve_smtp(services: Services, stop: threading.Event) -> None:
    """Worker: serve SMTP on ``smtp_host:smtp_port`` until ``stop`` is set."""
    run_server(SmtpServer(services), stop)


def run_server(
    server: SmtpServer, stop: threading.Event, ready: Callable[[], None] | None = None
) -> None:
    """Run an already configured server in this thread until ``stop`` is set.

    ``ready`` is called once the server listens (``freeze_heap``, for one).
    """
    if server.settings.log_level != "DEBUG":
        # aiosmtpd logs every command line at INFO; keep its warnings only.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(_serve(server, stop, ready))


async def _serve(
    server: SmtpServer, stop: threading.Event, ready: Callable[[], None] | None
) -> None:
    await server.start()
    if ready is not None:
        ready()
    try:
        while not stop.is_set():
            await asyncio.sleep(STOP_POLL_SECONDS)
    finally:
        await server.stop()
