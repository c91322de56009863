"""Hostile webhooks to the phone line of ``intake run``: forged, replayed, flooding.

A forged signature is ``403`` and leaves nothing behind: not stored (anyone
can send it, so storing it would let anyone fill the disk) and logged
with the path and the reason, never the caller's number. A replayed
webhook (same signature, same parameters) is the same complaint. A
pixel-flood photo is stored, typed from its bytes, never decoded.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from twilio.request_validator import RequestValidator

from tests.peers import hostile
from tests.peers.dovecot import DovecotServer
from tests.peers.hostile import marker
from tests.peers.hostile_gateway import (
    MEMORY_BOUND_MB,
    PUBLIC_BASE,
    HostileGateway,
    running_hostile_gateway,
)
from tests.peers.processes import wait_until
from tests.peers.twilio import ACCOUNT_SID, LINE_NUMBER, call_params, recording_url, sid

SENDER = "+212661234599"


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, dovecot: DovecotServer
) -> Iterator[HostileGateway]:
    with running_hostile_gateway(tmp_path_factory.mktemp("hostile"), dovecot) as running:
        yield running


def sms(body: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid("SM"),
        "From": SENDER,
        "To": LINE_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def stored_with(gateway: HostileGateway, tag: str) -> list[str]:
    return [m for m in hostile.complaint_messages(gateway.data_dir) if tag in m]


def reply_text(content: bytes) -> str:
    (reply,) = ET.fromstring(content)
    return reply.text or ""


def sms_still_works(gateway: HostileGateway) -> None:
    hooks = gateway.twilio()
    answer = hooks.post("/twilio/messaging", sms("Salam, lflouss ma wslatch " + marker()))
    hooks.close()
    assert answer.status_code == 200 and "CP-" in reply_text(answer.content)
    assert gateway.memory_growth_mb() < MEMORY_BOUND_MB


def forgeries(params: dict[str, str]) -> dict[str, dict[str, object]]:
    """How an attacker may try: each a set of ``TwilioWebhooks.post`` options."""
    url = f"{PUBLIC_BASE}/twilio/messaging"
    other_token = RequestValidator("not-the-auth-token").compute_signature(url, params)
    return {
        "no-signature": {"sign": False},
        "signed-with-another-token": {"signature": str(other_token)},
        "signed-for-another-host": {"signed_url": "http://127.0.0.1/twilio/messaging"},
        "signed-for-another-path": {"signed_url": f"{PUBLIC_BASE}/twilio/voice"},
        "garbage-signature": {"signature": "c2lnbmF0dXJl"},
    }


@pytest.mark.parametrize("case", list(forgeries({})))
def test_forged_webhook_is_refused_with_403_and_leaves_nothing_behind(
    gateway: HostileGateway, case: str
) -> None:
    tag = marker()
    params = sms(f"Réclamation {tag}, rappelez-moi au 0661234599")
    hooks = gateway.twilio()

    answer = hooks.post("/twilio/messaging", params, **forgeries(params)[case])  # type: ignore[arg-type]
    hooks.close()

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "invalid_signature"
    assert stored_with(gateway, tag) == []
    assert hostile.quarantined(gateway.data_dir, tag.encode()) is None
    assert "0661234599" not in gateway.process.stderr()
    sms_still_works(gateway)


def test_webhook_for_another_twilio_account_is_refused(gateway: HostileGateway) -> None:
    tag = marker()
    hooks = gateway.twilio()

    answer = hooks.post("/twilio/messaging", sms(tag, AccountSid="AC" + "f" * 32))
    hooks.close()

    assert answer.status_code == 403
    assert stored_with(gateway, tag) == []


def test_parameters_changed_after_signing_are_refused(gateway: HostileGateway) -> None:
    tag = marker()
    hooks = gateway.twilio()
    signed = sms("Bonjour")
    signature = hooks.signature(hooks.url("/twilio/messaging"), signed)

    answer = hooks.post("/twilio/messaging", {**signed, "Body": tag}, signature=signature)
    hooks.close()

    assert answer.status_code == 403
    assert stored_with(gateway, tag) == []


def test_webhook_body_that_is_not_utf8_is_refused(gateway: HostileGateway) -> None:
    with gateway.http() as client:
        answer = client.post(
            "/twilio/messaging",
            content=b"Body=\xff\xfe&From=%2B212661234599",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": "c2lnbmF0dXJl",
            },
        )
    assert answer.status_code == 403


def test_replayed_message_webhook_is_one_complaint_with_the_same_reply(
    gateway: HostileGateway,
) -> None:
    tag = marker()
    params = sms(f"Ma carte est bloquée {tag}")
    hooks = gateway.twilio()
    signature = hooks.signature(hooks.url("/twilio/messaging"), params)

    first = hooks.post("/twilio/messaging", params, signature=signature)
    again = hooks.post("/twilio/messaging", params, signature=signature)
    hooks.close()

    assert first.status_code == again.status_code == 200
    assert reply_text(first.content) == reply_text(again.content)
    wait_until(lambda: stored_with(gateway, tag), "the message's complaint")
    assert len(stored_with(gateway, tag)) == 1


def test_replayed_voice_webhooks_are_one_call_and_one_complaint(gateway: HostileGateway) -> None:
    call_sid, recording_sid = sid("CA"), sid("RE")
    url = recording_url(gateway.media.base_url, recording_sid)
    recording = call_params(call_sid, RecordingSid=recording_sid, RecordingUrl=url)
    steps = [
        ("/twilio/voice", call_params(call_sid, CallStatus="ringing"), ""),
        ("/twilio/voice/language", call_params(call_sid, Digits="1"), "attempt=1"),
        ("/twilio/voice/recorded", {**recording, "RecordingDuration": "4", "Digits": "#"}, ""),
    ]
    hooks = gateway.twilio()
    answers = []
    for path, params, query in steps:
        signature = hooks.signature(hooks.url(path, query), params)
        for _ in range(2):
            answers.append(hooks.post(path, params, query=query, signature=signature))
    hooks.close()

    assert [answer.status_code for answer in answers] == [200] * 6
    assert answers[-1].text == answers[-2].text  # the same reference read back
    assert len(stored_with(gateway, call_sid)) == 1


def test_pixel_flood_photo_is_stored_typed_and_never_decoded(gateway: HostileGateway) -> None:
    tag = marker()
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{tag}/Media/ME1"
    photo = gateway.media.add(path, hostile.pixel_flood_png(), "image/png")
    params = sms(f"Voici la capture {tag}", NumMedia="1", MediaUrl0=photo)
    hooks = gateway.twilio()

    answer = hooks.post("/twilio/messaging", {**params, "MediaContentType0": "image/png"})
    hooks.close()

    def photo_stored() -> dict | None:
        for message in stored_with(gateway, tag):
            attachments = json.loads(message)["attachments"]
            if attachments:
                return attachments[0]
        return None

    assert answer.status_code == 200
    attachment = wait_until(photo_stored, "the photo to be downloaded", timeout=60)
    assert attachment["content_type"] == "image/png"
    assert attachment["size"] == len(hostile.pixel_flood_png())
    sms_still_works(gateway)


def test_message_text_with_nul_bytes_is_recorded_without_them(gateway: HostileGateway) -> None:
    tag = marker()
    hooks = gateway.twilio()

    answer = hooks.post(
        "/twilio/messaging", sms(f"salam\x00\x00 lflouss {tag}", ProfileName="F\x00Z")
    )
    hooks.close()

    assert answer.status_code == 200
    # The webhook answered once the message was captured; the runner makes the complaint.
    stored = wait_until(lambda: stored_with(gateway, tag), "the message's complaint")
    [message] = [json.loads(m) for m in stored]
    assert "\x00" not in message["body"]
    assert "\x00" not in (message["customer"]["name"] or "")
