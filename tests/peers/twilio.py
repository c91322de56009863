"""Twilio as the tests see it: signed webhooks, a media server, the gateway on a real port.

Twilio's cloud cannot be reached from here, so:

- ``TwilioWebhooks`` posts webhooks signed exactly as Twilio signs them
  (``RequestValidator.compute_signature`` over the public URL and the
  parameters) to the gateway listening on a real socket;
- ``MediaServer`` stands in for Twilio's media URLs: a local HTTP server
  behind basic auth (account SID + auth token, as Twilio's API) serving
  real files (a WAV made with espeak-ng, PNG and JPEG images), able to fail
  a given number of times first;
- ``RunningGateway`` runs the real app under uvicorn in a thread, with the
  relay and the phone worker beside it when a test wants the whole flow.

The ``hooks`` fixture (a plugin of ``tests/conftest.py``) signs and posts to
the ``gateway`` fixture of the test module that asks for it.
"""

from __future__ import annotations

import base64
import io
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.services import Services, build_services
from gateway.runner import run_relay
from tests.peers.processes import free_port, wait_until

AUTH_TOKEN = "test-auth-token-" + "5" * 16
ACCOUNT_SID = "AC" + "a1" * 16
PUBLIC_BASE = "https://intake.cashplus.example"
LINE_NUMBER = "+212520020915"
CALLER = "+212661234567"


def sid(prefix: str) -> str:
    """A Twilio-shaped identifier: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def twilio_settings(base: Settings, **extra: object) -> Settings:
    """``base`` plus the phone line: Twilio credentials, public URL, fast worker."""
    values: dict[str, Any] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "public_base_url": PUBLIC_BASE,
        "twilio_worker_interval": 0.05,
        "media_fetch_backoff": 0.05,
        "call_end_grace": 0.5,
    }
    values.update(extra)
    return base.model_copy(update=values)


# -- webhooks ---------------------------------------------------------------
@dataclass
class TwilioWebhooks:
    """Posts webhooks to the gateway at ``target`` as Twilio would post them to ``public_base``."""

    target: str
    public_base: str = PUBLIC_BASE
    token: str = AUTH_TOKEN
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def url(self, path: str, query: str = "") -> str:
        return f"{self.public_base}{path}" + (f"?{query}" if query else "")

    def signature(self, url: str, params: Mapping[str, str]) -> str:
        return str(RequestValidator(self.token).compute_signature(url, dict(params)))

    def post(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        query: str = "",
        signed_url: str | None = None,
        signature: str | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        """POST form ``params``; signed for ``signed_url`` (default: the public URL)."""
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = signature or self.signature(
                signed_url or self.url(path, query), params
            )
        target = f"{self.target}{path}" + (f"?{query}" if query else "")
        return self.client.post(target, data=dict(params), headers=headers)

    def close(self) -> None:
        self.client.close()


def call_params(call_sid: str, **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "From": CALLER,
        "To": LINE_NUMBER,
        "Caller": CALLER,
        "Called": LINE_NUMBER,
        "Direction": "inbound",
        "CallStatus": "in-progress",
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def recording_url(media_base: str, recording_sid: str) -> str:
    """RecordingUrl as Twilio gives it (no extension) under the stand-in API."""
    return f"{media_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"


# -- media ------------------------------------------------------------------
def espeak_wav(text: str, voice: str = "fr") -> bytes:
    """A real WAV file: ``text`` spoken by espeak-ng."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True, timeout=60
    )
    assert done.stdout[:4] == b"RIFF", "espeak-ng did not write a WAV file"
    return done.stdout


def image_bytes(kind: str, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format=kind)
    return buffer.getvalue()


class MediaServer:
    """Files under basic auth; ``fail(path, n)`` answers 404 to the first n requests of a path,
    ``redirect(path, location)`` a 302 to ``location`` (after the auth check, as Twilio's API)."""

    def __init__(self, user: str = ACCOUNT_SID, password: str = AUTH_TOKEN) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.failures: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()
        self.unauthorized: Counter[str] = Counter()
        self.redirects: dict[str, str] = {}
        # The Authorization header of every request, in order (None: none sent).
        self.authorizations: list[str | None] = []
        expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler(expected))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, path: str, data: bytes, content_type: str) -> str:
        self.files[path] = (data, content_type)
        return self.base_url + path

    def fail(self, path: str, times: int) -> None:
        self.failures[path] = times

    def redirect(self, path: str, location: str) -> str:
        self.redirects[path] = location
        return self.base_url + path

    def _handler(self, expected: str) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                server.authorizations.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != f"Basic {expected}":
                    server.unauthorized[self.path] += 1
                    self._answer(401, b"", "text/plain", {"WWW-Authenticate": "Basic"})
                    return
                if self.path in server.redirects:
                    self._answer(302, b"", "text/plain", {"Location": server.redirects[self.path]})
                    return
                if server.failures[self.path] > 0:
                    server.failures[self.path] -= 1
                    self._answer(404, b"not yet", "text/plain")
                    return
                found = server.files.get(self.path)
                if found is None:
                    self._answer(404, b"no such file", "text/plain")
                    return
                self._answer(200, found[0], found[1])

            def _answer(
                self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return

        return Handler

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


# -- the gateway ------------------------------------------------------------
@dataclass
class RunningGateway:
    services: Services
    base_url: str


@contextmanager
def running_gateway(settings: Settings, *, relay: bool = False) -> Iterator[RunningGateway]:
    """The real app on a free port, the phone worker and a normalizer runner; the relay if asked."""
    from channels.twilio.worker import run_worker
    from gateway.runner import run_normalizer

    port = free_port()
    services = build_services(settings.model_copy(update={"http_port": port}))
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    threads = [threading.Thread(target=server.run, daemon=True)]
    threads.append(threading.Thread(target=run_worker, args=(services, stop), daemon=True))
    # As ``intake run``: a normalizer runner records what the edges captured (the API).
    threads.append(threading.Thread(target=run_normalizer, args=(services, stop), daemon=True))
    if relay:
        threads.append(threading.Thread(target=run_relay, args=(services, stop), daemon=True))
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: server.started, "the gateway to listen")
        yield RunningGateway(services, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        stop.set()
        services.store.captures.arrived.set()  # a runner waiting for a capture stops now
        for thread in threads:
            thread.join(15)
        services.close()


@pytest.fixture
def hooks(gateway: RunningGateway) -> Iterator[TwilioWebhooks]:
    """Signed webhooks to the test module's own ``gateway`` fixture."""
    webhooks = TwilioWebhooks(target=gateway.base_url)
    yield webhooks
    webhooks.close()
