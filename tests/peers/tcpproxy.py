"""A small threaded TCP proxy that can take a peer away, the way a network does.

Tests point a client (the relay, a consumer) at ``proxy.port`` instead of the
real broker, then:

- ``refuse()``: the listener is closed and every open connection is reset, so
  new connections get ``ECONNREFUSED`` and open ones see a reset: the broker
  is down.
- ``blackhole()``: connections are accepted and stay open, but no byte moves
  in either direction any more: a partition or a frozen broker. Writes still
  succeed on the client side (into socket buffers) while nothing answers,
  which is how a publisher ends up waiting for confirms that never come.
- ``restore()``: forwarding resumes for new connections. Connections that
  were blackholed are reset rather than resumed, because a client has long
  given up on them and replaying their stale bytes would only confuse it.

The shared broker itself is never touched, so other tests keep using it.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from contextlib import suppress
from typing import Literal

Mode = Literal["forward", "refuse", "blackhole"]
_TICK = 0.05
_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0), as a crashed peer or a firewall would."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()


class _Pipe:
    """One client connection and its upstream twin, pumped by one thread."""

    def __init__(self, proxy: TcpProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()
        self.blackholed = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="tcpproxy-pipe", daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)

    def _run(self) -> None:
        try:
            self._pump()
        except OSError:
            pass
        finally:
            self.close()
            self.proxy._forget(self)

    def _pump(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            while not self.closed.is_set():
                if self.proxy.mode != "forward":
                    # Nothing moves; the sockets stay open until restore() or refuse().
                    self.blackholed = True
                    self.closed.wait(_TICK)
                    continue
                if self.upstream is None:
                    self.upstream = socket.create_connection(self.proxy.target, timeout=5)
                    self.upstream.settimeout(None)
                    selector.register(self.client, selectors.EVENT_READ, self.upstream)
                    selector.register(self.upstream, selectors.EVENT_READ, self.client)
                for key, _events in selector.select(timeout=_TICK):
                    if self.proxy.mode != "forward":
                        break
                    data = key.fileobj.recv(_CHUNK)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        finally:
            selector.close()


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``; break the link on demand."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.mode: Mode = "forward"
        self._lock = threading.Lock()
        self._pipes: set[_Pipe] = set()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self.port = self._listen(0)

    # -- life cycle -------------------------------------------------------
    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(64)
        listener.settimeout(_TICK)
        self._listener = listener
        self._accepting.set()
        threading.Thread(
            target=self._accept_loop, args=(listener,), name="tcpproxy-accept", daemon=True
        ).start()
        return int(listener.getsockname()[1])

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting.is_set() and self._listener is listener:
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            pipe = _Pipe(self, client)
            with self._lock:
                self._pipes.add(pipe)
            pipe.start()

    def _forget(self, pipe: _Pipe) -> None:
        with self._lock:
            self._pipes.discard(pipe)

    def _close_listener(self) -> None:
        self._accepting.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.close()

    def _reset_pipes(self, only_blackholed: bool = False) -> None:
        with self._lock:
            pipes = [p for p in self._pipes if p.blackholed or not only_blackholed]
        for pipe in pipes:
            pipe.close()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pipes)

    # -- what tests call --------------------------------------------------
    def url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        return f"amqp://{user}:{password}@{self.host}:{self.port}/{vhost}"

    def refuse(self) -> None:
        """The peer is down: connections refused, open ones reset."""
        self.mode = "refuse"
        self._close_listener()
        self._reset_pipes()

    def blackhole(self) -> None:
        """The peer is unreachable but nothing says so: accept, then silence."""
        self.mode = "blackhole"
        if self._listener is None:
            self._listen(self.port)

    def restore(self) -> None:
        """Forward again; blackholed connections are reset so clients reconnect."""
        self._reset_pipes(only_blackholed=True)
        self.mode = "forward"
        if self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        self._close_listener()
        self._reset_pipes()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
