"""The call centre: callers put through in hours, a message otherwise, one complaint per call.

TwiML from the running app is parsed and read verb by verb; webhooks are
signed with twilio's ``RequestValidator``; the agent's typed complaint goes
through the real ``POST /v1/complaints``.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from channels.twilio.texts import ivr_table
from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import CallRow, EventRow
from tests.peers.processes import wait_until
from tests.peers.runners import settled
from tests.peers.twilio import (
    PUBLIC_BASE,
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)

ALWAYS_OPEN = "Mon-Sun 00:00-24:00"
AGENTS = "+212520020900"


def closed_today(zone: str) -> str:
    """Holidays around today (local), so that an always-open centre is closed now."""
    today = datetime.now(ZoneInfo(zone)).date()
    return ",".join(str(today + timedelta(days=shift)) for shift in (-1, 0, 1))


@dataclass
class Rig:
    gateway: RunningGateway
    hooks: TwilioWebhooks
    media: MediaServer
    api: httpx.Client

    def verbs(self, path: str, params: dict[str, str], query: str = "") -> list[ET.Element]:
        response = self.hooks.post(path, params, query=query)
        assert response.status_code == 200, response.text
        root = ET.fromstring(response.content)
        assert root.tag == "Response"
        return list(root)

    def choose(self, call_sid: str, digit: str) -> list[ET.Element]:
        self.hooks.post("/twilio/voice", call_params(call_sid, CallStatus="ringing"))
        return self.verbs(
            "/twilio/voice/language", call_params(call_sid, Digits=digit), query="attempt=1"
        )

    def state(self, call_sid: str) -> str | None:
        with reading(self.gateway.services.store.engine) as session:
            return session.scalar(select(CallRow.state).where(CallRow.call_sid == call_sid))

    def missed_events(self, call_sid: str) -> list[EventRow]:
        with reading(self.gateway.services.store.engine) as session:
            rows = session.scalars(select(EventRow).where(EventRow.kind == "call.missed"))
            return [row for row in rows if call_sid in row.dedup_key]

    def type_in(self, call_sid: str, body: str, **extra: object) -> httpx.Response:
        payload: dict[str, object] = {
            "body": body,
            "customer": {"phone": "0661234567"},
            "evidence": {"call_sid": call_sid},
            **extra,
        }
        return self.api.post("/v1/complaints", json=payload)


@contextmanager
def make_rig(settings: Settings, **extra: object) -> Iterator[Rig]:
    with MediaServer() as media:
        configured = twilio_settings(settings, twilio_api_base_url=media.base_url, **extra)
        with running_gateway(configured) as gateway:
            key = gateway.services.store.api_keys.create("crm")
            hooks = TwilioWebhooks(target=gateway.base_url)
            with httpx.Client(
                base_url=gateway.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as api:
                yield Rig(gateway, hooks, media, api)
            hooks.close()


@pytest.fixture
def open_rig(settings: Settings) -> Iterator[Rig]:
    with make_rig(
        settings, call_centre_hours=ALWAYS_OPEN, call_centre_dial=AGENTS, call_centre_wait=25
    ) as rig:
        yield rig


def query_of(url: str | None) -> dict[str, list[str]]:
    assert url is not None
    return parse_qs(urlsplit(url).query)


# -- in hours -------------------------------------------------------------------
def test_in_hours_the_caller_is_put_through_after_the_choice_with_the_language(
    open_rig: Rig,
) -> None:
    call_sid = sid("CA")

    say, dial = open_rig.choose(call_sid, "2")  # Darija

    assert say.tag == "Say"
    assert say.text == ivr_table().texts("ary").connecting
    assert dial.tag == "Dial"
    assert dial.get("timeout") == "25"
    assert dial.get("action", "").startswith(f"{PUBLIC_BASE}/twilio/voice/dialled?")
    assert query_of(dial.get("action"))["language"] == ["ary"]
    (number,) = list(dial)
    assert (number.tag, number.text) == ("Number", AGENTS)
    assert query_of(number.get("url"))["language"] == ["ary"]
    assert open_rig.state(call_sid) == "connecting"


def test_the_consent_notice_comes_before_anyone_is_dialled(open_rig: Rig) -> None:
    verbs = open_rig.verbs("/twilio/voice", call_params(sid("CA")))
    assert [verb.tag for verb in verbs] == ["Say", "Say", "Gather", "Redirect"]
    assert "Dial" not in {element.tag for verb in verbs for element in verb.iter()}


def test_sip_destination_carries_language_and_call_sid_as_headers(settings: Settings) -> None:
    call_sid = sid("CA")
    with make_rig(
        settings, call_centre_hours=ALWAYS_OPEN, call_centre_dial="sip:agents@pbx.example"
    ) as rig:
        _say, dial = rig.choose(call_sid, "3")

    (sip,) = list(dial)
    assert sip.tag == "Sip"
    uri, _, headers = (sip.text or "").partition("?")
    assert uri == "sip:agents@pbx.example"
    assert parse_qs(headers) == {"X-Cashplus-Language": ["ar"], "X-Cashplus-Call-Sid": [call_sid]}


def test_queue_destination_enqueues_in_the_language_queue(settings: Settings) -> None:
    with make_rig(
        settings,
        call_centre_hours=ALWAYS_OPEN,
        call_centre_dial="queue:reclamations-{language}",
        call_centre_wait=30,
    ) as rig:
        call_sid = sid("CA")
        _say, enqueue = rig.choose(call_sid, "4")
        holding = rig.verbs(
            "/twilio/voice/queue-wait", call_params(call_sid, QueueTime="12"), "language=zgh"
        )
        leaving = rig.verbs(
            "/twilio/voice/queue-wait", call_params(call_sid, QueueTime="30"), "language=zgh"
        )
        after = rig.verbs(
            "/twilio/voice/queue-left", call_params(call_sid, QueueResult="leave"), "language=zgh"
        )

    assert (enqueue.tag, enqueue.text) == ("Enqueue", "reclamations-zgh")
    assert query_of(enqueue.get("waitUrl"))["language"] == ["zgh"]
    assert enqueue.get("action", "").startswith(f"{PUBLIC_BASE}/twilio/voice/queue-left?")
    assert [verb.tag for verb in holding] == ["Say", "Pause"]
    assert holding[1].get("length") == "15"
    assert [verb.tag for verb in leaving] == ["Leave"]
    assert [verb.tag for verb in after][:3] == ["Say", "Say", "Record"]
    assert after[0].text == ivr_table().texts("zgh").no_agent


# -- nobody answers / out of hours ---------------------------------------------
@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_no_answer_puts_the_caller_on_the_recording_prompt(open_rig: Rig, status: str) -> None:
    call_sid = sid("CA")
    open_rig.choose(call_sid, "1")

    no_agent, prompt, record, *_rest = open_rig.verbs(
        "/twilio/voice/dialled", call_params(call_sid, DialCallStatus=status), "language=fr"
    )

    texts = ivr_table().texts("fr")
    assert (no_agent.text, prompt.text) == (texts.no_agent, texts.record_prompt)
    assert record.tag == "Record"
    assert record.get("action") == f"{PUBLIC_BASE}/twilio/voice/recorded"
    assert open_rig.state(call_sid) == "recording"


def test_out_of_hours_the_caller_leaves_a_message(settings: Settings) -> None:
    call_sid = sid("CA")
    holidays = closed_today(settings.timezone)
    with make_rig(
        settings,
        call_centre_hours=ALWAYS_OPEN,
        call_centre_dial=AGENTS,
        call_centre_holidays=holidays,
    ) as rig:
        closed, prompt, record, *_rest = rig.choose(call_sid, "1")
        state = rig.state(call_sid)

    texts = ivr_table().texts("fr")
    assert (closed.text, prompt.text) == (texts.closed, texts.record_prompt)
    assert record.tag == "Record"
    assert state == "recording"


def test_without_a_call_centre_the_line_is_voicemail_as_before(settings: Settings) -> None:
    with make_rig(settings) as rig:
        prompt, record, *_rest = rig.choose(sid("CA"), "1")
    assert prompt.text == ivr_table().texts("fr").record_prompt
    assert record.tag == "Record"


# -- answered ---------------------------------------------------------------------
def test_agent_whisper_says_the_language_and_the_call_is_answered(open_rig: Rig) -> None:
    call_sid = sid("CA")
    open_rig.choose(call_sid, "2")

    (whisper,) = open_rig.verbs(
        "/twilio/voice/whisper",
        call_params(sid("CA"), ParentCallSid=call_sid, Direction="outbound-dial"),
        "language=ary",
    )
    done = open_rig.verbs(
        "/twilio/voice/dialled", call_params(call_sid, DialCallStatus="completed"), "language=ary"
    )
    open_rig.hooks.post("/twilio/voice/status", call_params(call_sid, CallStatus="completed"))

    assert (whisper.tag, whisper.get("language")) == ("Say", "fr-FR")
    assert whisper.text == ivr_table().texts("ary").agent_whisper
    assert [verb.tag for verb in done] == ["Hangup"]
    assert open_rig.state(call_sid) == "answered"
    # Past the end-of-call grace, the worker would have declared a missed call by now.
    time.sleep(open_rig.gateway.services.settings.call_end_grace * 4)
    assert open_rig.missed_events(call_sid) == []


def test_caller_who_hangs_up_while_put_through_is_a_missed_call(open_rig: Rig) -> None:
    call_sid = sid("CA")
    open_rig.choose(call_sid, "1")

    open_rig.hooks.post("/twilio/voice/status", call_params(call_sid, CallStatus="completed"))

    wait_until(lambda: open_rig.missed_events(call_sid), "the missed-call event", timeout=15)
    (event,) = open_rig.missed_events(call_sid)
    assert '"stage": "connecting"' in event.payload or '"stage":"connecting"' in event.payload


# -- the agent's typed complaint: one call, one complaint ---------------------
def test_agent_complaint_is_linked_to_the_call(open_rig: Rig) -> None:
    call_sid = sid("CA")
    open_rig.choose(call_sid, "2")
    call = open_rig.gateway.services.store.calls().get(call_sid)
    assert call is not None

    body = f"Le client n'a pas reçu le transfert {uuid.uuid4()}."
    first = open_rig.type_in(call_sid, body)
    again = open_rig.type_in(call_sid, body)

    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert again.json()["reference"] == first.json()["reference"]
    settled(open_rig.gateway.services)
    wait_until(lambda: open_rig.state(call_sid) == "recorded", "the call linked to its complaint")
    stored = open_rig.gateway.services.store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert stored is not None
    assert stored.reference == first.json()["reference"]
    assert stored.channel.value == "phone"
    assert stored.evidence.call_sid == call_sid
    assert stored.received_at == call.started_at  # the legal clock starts with the call
    assert open_rig.state(call_sid) == "recorded"


def test_a_second_complaint_typed_on_the_same_call_is_refused_naming_the_first(
    open_rig: Rig,
) -> None:
    call_sid = sid("CA")
    open_rig.choose(call_sid, "1")
    first = open_rig.type_in(call_sid, f"Carte bloquée {uuid.uuid4()}.")

    second = open_rig.type_in(call_sid, f"Autre chose {uuid.uuid4()}.")
    follow_up = open_rig.type_in(
        call_sid, f"Le client ajoute {uuid.uuid4()}.", follow_up_of=first.json()["reference"]
    )

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "call_has_complaint"
    assert first.json()["reference"] in second.json()["error"]["message"]
    assert follow_up.status_code == 201, follow_up.text


def test_agent_complaint_after_a_recorded_message_is_refused(open_rig: Rig) -> None:
    call_sid, recording_sid = sid("CA"), sid("RE")
    open_rig.choose(call_sid, "1")
    open_rig.hooks.post("/twilio/voice/dialled", call_params(call_sid, DialCallStatus="no-answer"))
    open_rig.hooks.post(
        "/twilio/voice/recorded",
        call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url(open_rig.media.base_url, recording_sid),
        ),
    )

    typed = open_rig.type_in(call_sid, f"Réclamation {uuid.uuid4()}.")

    assert typed.status_code == 409
    assert typed.json()["error"]["code"] == "call_has_complaint"


def test_unknown_call_sid_is_refused(open_rig: Rig) -> None:
    refused = open_rig.type_in(sid("CA"), "Réclamation sans appel.")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unknown_call"


def test_malformed_call_sid_is_refused(open_rig: Rig) -> None:
    refused = open_rig.type_in("CA-not-a-sid", "Réclamation.")
    assert refused.status_code == 422
