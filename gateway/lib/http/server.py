"""The HTTP server's own bounds against slow and idle clients (slowloris).

``gateway.runner.web_server`` -> uvicorn with **HeaderTimeoutProtocol** (h11).

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``), the
size of a request head (``h11_max_incomplete_event_size``) and the
connections and requests in progress (``limit_concurrency``, a 503 beyond
it), but not how long a client may take to send its headers: a connection
that sends one header line per second, or nothing at all after connecting,
is kept for ever, and a few thousand of them use up the file descriptors.

``HeaderTimeoutProtocol`` is uvicorn's h11 protocol with one timer more: from
the connection's start, and again after each answer on a kept-alive
connection, the client has ``header_timeout`` seconds to complete the head
of its next request; otherwise the connection is closed. Once the head is
in, the timer stops: a slow body is the application's and the fronting
proxy's business (``client_body_timeout``). The h11 protocol is used
whatever else is installed (httptools has no such hook).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("intake.http")


class HeaderTimeoutProtocol(H11Protocol):
    """h11 with a deadline on each request's head; ``header_timeout`` is set by ``protocol_for``."""

    header_timeout: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_deadline()  # the head is in (or the connection is ending)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()  # the next request on this connection

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        log.info("closed a connection whose request head took over %ss", self.header_timeout)
        self.transport.close()


def protocol_for(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class with this deadline (uvicorn takes a class, not an instance)."""
    return type(
        "HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": header_timeout}
    )
