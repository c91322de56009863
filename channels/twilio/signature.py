"""Is this webhook from Twilio? ``X-Twilio-Signature``, checked with twilio's own validator.

Twilio signs the full URL it requested plus the sorted POST parameters with
the account's Auth Token (HMAC-SHA1). Behind a proxy the URL we see (host,
scheme, port) is not the one Twilio requested, so it is rebuilt from
``INTAKE_PUBLIC_BASE_URL`` plus the path and query, never from the ``Host``
header. Anything that does not verify is answered ``403`` and logged with
the path and the reason, never the body (it holds the caller's number).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from config.settings import Settings
from gateway.lib.http.errors import ApiError

log = logging.getLogger("intake.twilio")

FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class TwilioRequest:
    """A verified webhook: its parameters and its body exactly as received."""

    params: ImmutableMultiDict[str, str]
    body: bytes
    path: str
    received_at: datetime

    def get(self, name: str, default: str = "") -> str:
        value = self.params.get(name, default)
        return value.strip() if isinstance(value, str) else default


def public_url(settings: Settings, request: Request) -> str:
    """The URL Twilio requested, as configured publicly (scheme and host from the setting)."""
    url = settings.public_base_url.rstrip("/") + request.url.path
    query = request.url.query
    return f"{url}?{query}" if query else url


def parse_form(body: bytes) -> ImmutableMultiDict[str, str] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True))


def signature_problem(
    settings: Settings,
    url: str,
    params: ImmutableMultiDict[str, str] | None,
    signature: str | None,
    signature_settings: str | None,
) -> str | None:
    """Why the request is not Twilio's, or None when it is."""
    token = settings.twilio_auth_token.get_secret_value()
    unusable = {
        "TWILIO_AUTH_TOKEN is not set: every webhook is refused": not token,
        f"no {SIGNATURE_HEADER} header": not signature,
        "body is not UTF-8 form data": params is None,
    }
    for reason, applies in unusable.items():
        if applies:
            return reason
    assert params is not None and signature is not None
    algorithm = get_signature_algorithm(signature_settings)
    if not RequestValidator(token).validate(url, params, signature, algorithm):
        if signature_settings:
            return "signed with a webhook shared key; only Auth Token signatures are configured"
        return "signature does not match"
    account = settings.twilio_account_sid
    if account and params.get("AccountSid", account) != account:
        return "webhook for another Twilio account"
    return None


async def verified_twilio_request(request: Request) -> TwilioRequest:
    """FastAPI dependency: the webhook's parameters, or ``403`` if Twilio did not sign it."""
    settings: Settings = request.app.state.services.settings
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    params = parse_form(body) if content_type in (FORM_TYPE, "") else None
    problem = signature_problem(
        settings,
        public_url(settings, request),
        params,
        request.headers.get(SIGNATURE_HEADER),
        request.headers.get(SIGNATURE_SETTINGS_HEADER),
    )
    if problem is not None or params is None:
        log.warning("refused webhook on %s: %s", request.url.path, problem)
        raise ApiError(403, "invalid_signature", "request not signed by Twilio")
    return TwilioRequest(
        params=params, body=body, path=request.url.path, received_at=datetime.now(UTC)
    )
