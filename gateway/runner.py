"""Process entry points: the web server, the relay, the normalizer runner, and all in one.

The Procfile names one process per role; ``intake run`` runs every role in
one process (threads), which is what a developer or a single small machine
wants. Ctrl-C (SIGINT) or SIGTERM stops everything cleanly: the web server
finishes its requests, the relay its batch.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.components import COMPONENTS
from gateway.lib.commands import freeze_heap
from gateway.lib.component import CaptureNormalizer, Worker
from gateway.lib.services import Services
from router.relay import build_relay

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("intake.runner")


def web_server(services: Services) -> uvicorn.Server:
    # Imported here: the relay and the workers start without the web stack.
    import uvicorn

    from gateway.app import create_app
    from gateway.lib.http.server import protocol_for

    settings = services.settings
    config = uvicorn.Config(
        create_app(services),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # Bounds against slow and idle clients (gateway/lib/http/server.py).
        http=protocol_for(settings.http_header_timeout),
        limit_concurrency=settings.http_limit_concurrency,
        timeout_keep_alive=settings.http_timeout_keep_alive,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
    )
    return uvicorn.Server(config)


def listening_socket(host: str, port: int) -> socket.socket:
    """The HTTP port, shareable: several web processes on one host, one per core.

    ``SO_REUSEPORT`` lets the kernel spread connections among every process
    listening on the port (same user only). Raises ``OSError`` when the port
    is held by something else. Bound, not yet listening: the server listens
    once it serves, after the signal handlers are in place, so a client that
    got through is never dropped by a process not ready to stop cleanly.
    """
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    return listener


def _thread(name: str, target: Callable[[], None]) -> threading.Thread:
    def guarded() -> None:
        try:
            target()
        except Exception:
            log.exception("%s stopped on an error", name)

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread


def run_relay(services: Services, stop: threading.Event) -> None:
    build_relay(services.settings, services.store).run(stop)


def capture_normalizers() -> dict[str, CaptureNormalizer]:
    """Capture channel name -> the step of the component that normalizes it."""
    return {
        name: component.normalize
        for component in COMPONENTS
        if component.normalize is not None
        for name in component.normalizes
    }


def run_normalizer(services: Services, stop: threading.Event) -> None:
    """A normalizer runner: captured inputs to complaints, until ``stop``."""
    from gateway.lib.normalize_runner import NormalizeRunner

    NormalizeRunner(services, capture_normalizers()).run(stop)


def _bind(worker: Worker, services: Services, stop: threading.Event) -> Callable[[], None]:
    return lambda: worker(services, stop)


def run_all(services: Services, listener: socket.socket) -> None:
    """Web, relay and every enabled channel worker in one process, until interrupted.

    ``listener``: the HTTP socket, bound by the caller (``listening_socket``).
    """
    from normalizer.language import warm_up_in_background

    warm_up_in_background(then=freeze_heap)
    stop = threading.Event()
    threads = [
        _thread("relay", lambda: run_relay(services, stop)),
        _thread("normalize", lambda: run_normalizer(services, stop)),
    ]
    for channel in COMPONENTS:
        worker = channel.worker
        if worker is not None and channel.enabled(services):
            threads.append(_thread(channel.name, _bind(worker, services, stop)))
    server = web_server(services)
    log.info(
        "gateway listening on http://%s:%s (workers: %s)",
        services.settings.http_host,
        services.settings.http_port,
        ", ".join(thread.name for thread in threads),
    )
    _stop_on_signals(stop)
    try:
        server.run(sockets=[listener])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        log.info("gateway stopped")


def serve_web(services: Services, listener: socket.socket) -> None:
    """The HTTP server alone on ``listener``, until SIGINT or SIGTERM (exit 0 on either)."""
    from normalizer.language import warm_up_in_background

    warm_up_in_background(then=freeze_heap)
    _stop_on_signals(threading.Event())
    web_server(services).run(sockets=[listener])


def _stop_on_signals(stop: threading.Event) -> None:
    """Make SIGINT and SIGTERM mean "stop", also after uvicorn is done with them.

    uvicorn shuts down gracefully on either signal, then raises it again for
    the handler it found installed. With Python's defaults that is a
    KeyboardInterrupt (exit 1, "Aborted!") or, for SIGTERM, death before the
    relay finished its batch and the threads were joined.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
