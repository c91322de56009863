"""A local stand-in for Twilio's REST API (Messages), recording what the client sent.

Twilio's cloud cannot be reached from here. The acknowledgement worker's
twilio ``Client`` has its base URL pointed at this server
(``INTAKE_TWILIO_API_BASE_URL``); it answers like Twilio does: ``201`` with
a message resource, ``401`` (code 20003) for wrong credentials, ``400``
(code 21211) for a number the test marked invalid. Each request is kept:
path, Basic auth user, and the form fields the library sent.

WhatsApp through the Content API as Twilio checks it: ``templates`` holds
the approved ContentSids and how many variables each has; a ContentSid not
among them is refused with 63027, ContentVariables that are not a JSON
object of that many values with 63028, and a ContentSid the test put in
``refusals`` with the code given (63016 outside the 24-hour window...). A
free-form WhatsApp ``Body`` to a number in ``outside_window`` gets 63016.
A request with neither Body, MediaUrl nor ContentSid gets 21619.
``report_status`` then plays Twilio's part after the send: it posts the
message's status (``sent``, ``delivered``, ``undelivered`` with an
``ErrorCode``...) to the ``StatusCallback`` the message named, signed with
the Auth Token. Every
refusal is HTTP 400 with Twilio's JSON body (code, message, more_info,
status), which the twilio library turns into ``TwilioRestException``.
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
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from config.settings import Settings

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class TwilioRequest:
    method: str
    path: str
    user: str
    form: dict[str, str]
    # Twilio's error code in the answer; None when the message was accepted.
    code: int | None = None
    # The MessageSid of an accepted message.
    sid: str | None = None


@dataclass
class TwilioApi:
    port: int
    invalid_numbers: set[str] = field(default_factory=set)
    # Approved Content API templates: ContentSid -> number of variables ({{1}}...).
    templates: dict[str, int] = field(default_factory=dict)
    # ContentSid -> the error code Twilio answers it with (63016, 63028...).
    refusals: dict[str, int] = field(default_factory=dict)
    # WhatsApp numbers whose 24-hour customer service window is closed.
    outside_window: set[str] = field(default_factory=set)
    requests: list[TwilioRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def recorded(self) -> list[TwilioRequest]:
        with self.lock:
            return list(self.requests)

    def report_status(
        self,
        request: TwilioRequest,
        status: str,
        *,
        gateway: str,
        error_code: int | None = None,
        token: str = AUTH_TOKEN,
    ) -> httpx.Response:
        """Post the message's status to its ``StatusCallback`` as Twilio does, signed.

        The callback URL is the public one the message named; the request
        goes to ``gateway`` (the app on its local port) with that URL's path.
        ``token``: another Auth Token forges the signature.
        """
        url = request.form["StatusCallback"]
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "From": request.form["From"],
            "To": request.form["To"],
            "MessageSid": str(request.sid),
            "SmsSid": str(request.sid),
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(token).compute_signature(url, params)
        target = gateway.rstrip("/") + urlsplit(url).path
        return httpx.post(
            target, data=params, headers={"X-Twilio-Signature": signature}, timeout=30
        )


def _handler(api: TwilioApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            user, password = _basic(self.headers.get("Authorization", ""))
            request = TwilioRequest("POST", self.path, user, form)
            with api.lock:
                api.requests.append(request)
            expected = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
            if (user, password) != (ACCOUNT_SID, AUTH_TOKEN):
                self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            elif self.path != expected:
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
            elif form.get("To", "") in api.invalid_numbers:  # "whatsapp:+212..." for WhatsApp
                request.code = 21211
                message = f"The 'To' number {form['To']} is not a valid phone number."
                self._answer(400, {"code": 21211, "message": message, "status": 400})
            elif (code := _refused(api, form)) is not None:
                request.code = code
                self._answer(400, _error(code))
            else:
                resource = _resource(form)
                request.sid = str(resource["sid"])
                self._answer(201, resource)

        def _answer(self, status: int, payload: dict[str, object]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


# Twilio's titles of the errors the stand-in answers (twilio.com/docs/api/errors/<code>).
ERRORS: dict[int, str] = {
    21619: "A text message body or media URL must be specified.",
    63016: "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template.",
    63021: "Channel invalid content error",
    63027: "Template does not exist for a language and locale",
    63028: "Number of parameters provided does not match the expected number of parameters",
}


def _error(code: int) -> dict[str, object]:
    return {
        "code": code,
        "message": ERRORS[code],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }


def _refused(api: TwilioApi, form: dict[str, str]) -> int | None:
    """The error code Twilio would answer this message with, or ``None``."""
    content_sid = form.get("ContentSid")
    if content_sid:
        if content_sid in api.refusals:
            return api.refusals[content_sid]
        if content_sid not in api.templates:
            return 63027
        return None if _variables_fit(form, api.templates[content_sid]) else 63028
    if not form.get("Body") and not form.get("MediaUrl"):
        return 21619
    to = form.get("To", "")
    if to.startswith("whatsapp:") and to.removeprefix("whatsapp:") in api.outside_window:
        return 63016
    return None


def _variables_fit(form: dict[str, str], count: int) -> bool:
    try:
        values = json.loads(form.get("ContentVariables") or "{}")
    except ValueError:
        return False
    expected = {str(n) for n in range(1, count + 1)}
    return isinstance(values, dict) and set(values) == expected


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
