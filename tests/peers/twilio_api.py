"""A local stand-in for Twilio's REST API (Messages), recording what the client sent.

Twilio's cloud cannot be reached from here. The acknowledgement worker's
twilio ``Client`` has its base URL pointed at this server
(``INTAKE_TWILIO_API_BASE_URL``); it answers like Twilio does: ``201`` with
a message resource, ``401`` (code 20003) for wrong credentials, ``400``
(code 21211) for a number the test marked invalid. Each request is kept:
path, Basic auth user, and the form fields the library sent.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from pydantic import SecretStr

from config.settings import Settings

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class TwilioRequest:
    method: str
    path: str
    user: str
    form: dict[str, str]


@dataclass
class TwilioApi:
    port: int
    invalid_numbers: set[str] = field(default_factory=set)
    requests: list[TwilioRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def recorded(self) -> list[TwilioRequest]:
        with self.lock:
            return list(self.requests)


def _handler(api: TwilioApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            user, password = _basic(self.headers.get("Authorization", ""))
            with api.lock:
                api.requests.append(TwilioRequest("POST", self.path, user, form))
            expected = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
            if (user, password) != (ACCOUNT_SID, AUTH_TOKEN):
                self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            elif self.path != expected:
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
            elif form.get("To", "").removeprefix("whatsapp:") in api.invalid_numbers:
                message = f"The 'To' number {form['To']} is not a valid phone number."
                self._answer(400, {"code": 21211, "message": message, "status": 400})
            else:
                self._answer(201, _resource(form))

        def _answer(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _basic(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


def _resource(form: dict[str, str]) -> dict[str, object]:
    sid = "SM" + secrets.token_hex(16)
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": form.get("To"),
        "from": form.get("From"),
        "body": form.get("Body"),
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    }


@contextmanager
def twilio_api() -> Iterator[TwilioApi]:
    """The stand-in, listening on a free port until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    api = TwilioApi(port=int(server.server_address[1]))
    server.RequestHandlerClass = _handler(api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def twilio_settings(
    settings: Settings, api: TwilioApi, token: str = AUTH_TOKEN, **more: object
) -> Settings:
    """``settings`` with the phone line's Twilio account pointed at the stand-in ``api``."""
    return settings.model_copy(
        update={
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": SecretStr(token),
            "twilio_api_base_url": api.url,
            "twilio_phone_number": "+212520020915",
            **more,
        }
    )
