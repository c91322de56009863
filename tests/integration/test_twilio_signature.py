"""Only Twilio gets in: every webhook is checked with twilio's RequestValidator.

The gateway runs on 127.0.0.1 but is configured with a public https URL, as
behind a proxy; Twilio signs the public URL, so that is the one that must
verify, whatever the Host header says.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import CallRow
from tests.peers.twilio import (
    CALLER,
    PUBLIC_BASE,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    running_gateway,
    sid,
    twilio_settings,
)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    with running_gateway(twilio_settings(settings)) as running:
        yield running


def calls_recorded(gateway: RunningGateway) -> int:
    with reading(gateway.services.store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(CallRow)) or 0)


def test_webhook_signed_for_the_public_url_is_answered_with_twiml(hooks: TwilioWebhooks) -> None:
    response = hooks.post("/twilio/voice", call_params(sid("CA")))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Gather" in response.text


def test_missing_signature_header_is_refused(
    hooks: TwilioWebhooks, gateway: RunningGateway
) -> None:
    response = hooks.post("/twilio/voice", call_params(sid("CA")), sign=False)

    assert response.status_code == 403
    assert calls_recorded(gateway) == 0


def test_signature_made_with_another_token_is_refused(hooks: TwilioWebhooks) -> None:
    params = call_params(sid("CA"))
    forged = TwilioWebhooks(target=hooks.target, token="not-the-auth-token")

    response = hooks.post(
        "/twilio/voice", params, signature=forged.signature(hooks.url("/twilio/voice"), params)
    )

    forged.close()
    assert response.status_code == 403


def test_parameter_changed_after_signing_is_refused(hooks: TwilioWebhooks) -> None:
    params = call_params(sid("CA"))
    signature = hooks.signature(hooks.url("/twilio/voice"), params)

    response = hooks.post("/twilio/voice", {**params, "From": "+212600000000"}, signature=signature)

    assert response.status_code == 403


def test_query_changed_after_signing_is_refused(hooks: TwilioWebhooks) -> None:
    params = call_params(sid("CA"), Digits="1")
    signature = hooks.signature(hooks.url("/twilio/voice/language", "attempt=1"), params)

    response = hooks.post("/twilio/voice/language", params, query="attempt=2", signature=signature)

    assert response.status_code == 403


def test_signature_for_http_when_the_public_url_is_https_is_refused(
    hooks: TwilioWebhooks,
) -> None:
    http_url = PUBLIC_BASE.replace("https://", "http://") + "/twilio/voice"

    response = hooks.post("/twilio/voice", call_params(sid("CA")), signed_url=http_url)

    assert response.status_code == 403


def test_signature_for_the_url_the_host_header_names_is_refused(
    hooks: TwilioWebhooks, gateway: RunningGateway
) -> None:
    response = hooks.post(
        "/twilio/voice", call_params(sid("CA")), signed_url=f"{gateway.base_url}/twilio/voice"
    )

    assert response.status_code == 403


def test_correctly_signed_webhook_for_another_account_is_refused(hooks: TwilioWebhooks) -> None:
    response = hooks.post(
        "/twilio/messaging",
        {"AccountSid": "AC" + "0" * 32, "MessageSid": sid("SM"), "From": CALLER, "Body": "x"},
    )

    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/twilio/voice",
        "/twilio/voice/menu",
        "/twilio/voice/language",
        "/twilio/voice/recorded",
        "/twilio/voice/recording-status",
        "/twilio/voice/transcription",
        "/twilio/voice/status",
        "/twilio/messaging",
    ],
)
def test_every_twilio_route_refuses_a_bad_signature(hooks: TwilioWebhooks, path: str) -> None:
    response = hooks.post(path, call_params(sid("CA")), signature="c2lnbmF0dXJl")

    assert response.status_code == 403


def test_refused_webhook_is_logged_without_its_body(
    hooks: TwilioWebhooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="intake.twilio")

    hooks.post("/twilio/voice", call_params(sid("CA"), From="+212677889900"), sign=False)

    refusals = [record for record in caplog.records if "refused webhook" in record.getMessage()]
    assert len(refusals) == 1
    assert "677889900" not in caplog.text
    assert "/twilio/voice" in refusals[0].getMessage()


def test_without_an_auth_token_every_webhook_is_refused(settings: Settings) -> None:
    unconfigured = twilio_settings(settings, twilio_auth_token=SecretStr(""))
    with running_gateway(unconfigured) as gateway:
        webhooks = TwilioWebhooks(target=gateway.base_url)
        response = webhooks.post("/twilio/voice", call_params(sid("CA")))
        webhooks.close()

    assert response.status_code == 403
