"""Calls in the store: missed calls, callbacks out of order, languages, bad webhooks.

The gateway runs on a socket with its phone worker; what the outbox would
publish is read from the store (the queue itself is covered by
``test_twilio_flows``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from channels.twilio.texts import ivr_table
from config.settings import Settings
from gateway.store.db import reading
from gateway.store.tables import CallRow, EventRow, OutboxRow, QuarantineRow
from normalizer.contract import ComplaintEvent, ComplaintMessage
from tests.peers.processes import wait_until
from tests.peers.twilio import (
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    espeak_wav,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)

ARABIC = "السلام عليكم، أرسلت حوالة إلى أخي يوم الاثنين ولم يتوصل بها إلى حد الآن"
ENGLISH = "Hello, the cash machine kept my card yesterday evening and nobody called me back."


@dataclass
class Rig:
    gateway: RunningGateway
    hooks: TwilioWebhooks
    media: MediaServer
    api_key: str

    def transcript(self, call_sid: str, text: str) -> dict[str, object]:
        response = self.hooks.client.post(
            f"{self.gateway.base_url}/v1/calls/{call_sid}/transcript",
            json={"text": text},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def record(
        self, call_sid: str, *, wav: bytes | None = None, recording_sid: str | None = None
    ) -> str:
        recording_sid = recording_sid or sid("RE")
        url = recording_url(self.media.base_url, recording_sid)
        if wav is not None:
            self.media.add(url.removeprefix(self.media.base_url) + ".wav", wav, "audio/x-wav")
        response = self.hooks.post(
            "/twilio/voice/recorded",
            call_params(call_sid, RecordingSid=recording_sid, RecordingUrl=url),
        )
        assert response.status_code == 200, response.text
        return recording_sid

    def queued(self, call_sid: str) -> tuple[ComplaintMessage, list[OutboxRow]]:
        """The complaint as its first outbox row would publish it, and all its rows."""
        store = self.gateway.services.store
        found = store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
        assert found is not None
        with reading(store.engine) as session:
            rows = list(
                session.scalars(
                    select(OutboxRow)
                    .where(OutboxRow.complaint_id == found.id)
                    .order_by(OutboxRow.id)
                )
            )
        return ComplaintEvent.model_validate_json(rows[0].payload).data, rows

    def call_state(self, call_sid: str) -> str | None:
        with reading(self.gateway.services.store.engine) as session:
            return session.scalar(select(CallRow.state).where(CallRow.call_sid == call_sid))

    def events(self) -> list[EventRow]:
        with reading(self.gateway.services.store.engine) as session:
            return list(session.scalars(select(EventRow)))


@contextmanager
def make_rig(settings: Settings, **extra: object) -> Iterator[Rig]:
    with MediaServer() as media:
        configured = twilio_settings(settings, twilio_api_base_url=media.base_url, **extra)
        with running_gateway(configured) as gateway:
            hooks = TwilioWebhooks(target=gateway.base_url)
            key = gateway.services.store.api_keys.create("call-centre-stt", {"transcripts:write"})
            yield Rig(gateway, hooks, media, key)
            hooks.close()


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    with make_rig(settings) as made:
        yield made


@pytest.fixture(scope="module")
def wav() -> bytes:
    return espeak_wav("Mon transfert n'est pas arrivé.", "fr")


def start_call(rig: Rig, digit: str | None = "1") -> str:
    call_sid = sid("CA")
    rig.hooks.post("/twilio/voice", call_params(call_sid, CallStatus="ringing"))
    if digit is not None:
        rig.hooks.post(
            "/twilio/voice/language", call_params(call_sid, Digits=digit), query="attempt=1"
        )
    return call_sid


def hang_up(rig: Rig, call_sid: str) -> None:
    response = rig.hooks.post(
        "/twilio/voice/status", call_params(call_sid, CallStatus="completed", CallDuration="30")
    )
    assert response.status_code == 200


def test_call_that_ends_while_recording_without_a_recording_is_missed_after_the_grace(
    rig: Rig,
) -> None:
    call_sid = start_call(rig)
    hang_up(rig, call_sid)

    (event,) = wait_until(rig.events, "the missed-call event")

    assert event.kind == "call.missed"
    assert '"stage":"recording"' in event.payload.replace(" ", "")
    # The event is written first, the call marked missed just after it.
    wait_until(lambda: rig.call_state(call_sid) == "missed", "the call marked missed")


def test_hang_up_during_recording_then_the_recording_makes_a_complaint_and_no_missed_call(
    settings: Settings,
) -> None:
    with make_rig(settings, call_end_grace=30.0) as rig:
        call_sid = start_call(rig)
        hang_up(rig, call_sid)
        rig.record(call_sid)

        message, _rows = rig.queued(call_sid)

        assert message.evidence.call_sid == call_sid
        assert rig.call_state(call_sid) == "completed"
        assert rig.events() == []


def test_recording_status_callback_alone_records_the_complaint(rig: Rig) -> None:
    call_sid, recording_sid = start_call(rig, digit="6"), sid("RE")

    rig.hooks.post(
        "/twilio/voice/recording-status",
        call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url(rig.media.base_url, recording_sid),
            RecordingStatus="completed",
        ),
    )

    message, _rows = rig.queued(call_sid)
    assert message.language.tag == "es"
    assert message.evidence.recording_sid == recording_sid


def test_a_darija_call_is_published_as_darija_in_arabic_script(rig: Rig) -> None:
    call_sid = start_call(rig, digit="2")  # the menu's Darija (code ``ary``)

    recording_sid = sid("RE")
    spoken = rig.hooks.post(
        "/twilio/voice/recorded",
        call_params(
            call_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url(rig.media.base_url, recording_sid),
        ),
    )

    message, rows = rig.queued(call_sid)
    assert (message.language.tag, message.language.method) == ("ary-Arab", "ivr")
    assert rows[0].routing_key == "complaint.phone.ary-Arab"
    assert ivr_table().texts("ary").goodbye in spoken.text  # still spoken to in Darija


def test_transcript_in_another_language_than_the_choice_is_kept_as_secondary(rig: Rig) -> None:
    call_sid = start_call(rig, digit="1")
    rig.record(call_sid)

    rig.transcript(call_sid, ARABIC)

    message, _rows = rig.queued(call_sid)
    assert (message.language.tag, message.language.method) == ("fr", "ivr")
    (secondary,) = message.language.secondary
    assert secondary.tag in ("ar", "ary-Arab")
    assert message.body == ARABIC


def test_caller_who_pressed_nothing_gets_the_default_language_until_a_transcript_decides(
    rig: Rig,
) -> None:
    call_sid = start_call(rig, digit=None)
    rig.hooks.post("/twilio/voice/menu", call_params(call_sid), query="attempt=3")
    rig.record(call_sid)
    guessed, _rows = rig.queued(call_sid)

    rig.transcript(call_sid, ENGLISH)

    decided, rows = rig.queued(call_sid)
    assert (guessed.language.tag, guessed.language.method) == ("fr", "ivr-default")
    assert guessed.language.confidence < 1
    assert (decided.language.tag, decided.language.method) == ("en", "transcript")
    # Not published yet: the queued row now goes to English readers.
    assert rows[0].routing_key == "complaint.phone.en"


def test_transcript_and_recording_before_publication_rewrite_the_waiting_message_once_released(
    rig: Rig, wav: bytes
) -> None:
    call_sid = start_call(rig)
    rig.record(call_sid, wav=wav)

    outcome = rig.transcript(call_sid, "Mon transfert de mille dirhams n'est pas arrivé.")

    assert outcome["outcome"] in ("rewritten", "released")

    def released() -> bool:
        _message, rows = rig.queued(call_sid)
        return rows[0].available_at is not None and rows[0].available_at <= datetime.now(UTC)

    wait_until(released, "the complete complaint to be released")
    message, rows = rig.queued(call_sid)
    assert len(rows) == 1  # rewritten in place: no amendment before publication
    assert message.body == "Mon transfert de mille dirhams n'est pas arrivé."
    assert len(message.attachments) == 1
    assert message.evidence.missing_media == []


def test_webhook_without_call_sid_is_refused_and_quarantined(rig: Rig) -> None:
    params = call_params("x")
    del params["CallSid"]

    response = rig.hooks.post("/twilio/voice/recorded", params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_parameter"
    with reading(rig.gateway.services.store.engine) as session:
        (row,) = session.scalars(select(QuarantineRow)).all()
    assert row.reason_code == "missing_parameter"
    assert "CallSid" in row.reason


def test_whole_call_on_postgresql(settings: Settings, postgres_url: str, wav: bytes) -> None:
    with make_rig(settings.model_copy(update={"database_url": postgres_url})) as rig:
        call_sid = start_call(rig, digit="3")
        recording_sid = rig.record(call_sid, wav=wav)
        rig.record(call_sid, wav=wav, recording_sid=recording_sid)  # Twilio's retry
        rig.transcript(call_sid, ARABIC)

        wait_until(
            lambda: rig.queued(call_sid)[0].attachments, "the recording on PostgreSQL", timeout=30
        )
        message, rows = rig.queued(call_sid)

    assert len(rows) == 1
    assert message.body == ARABIC
    assert message.language.tag == "ar"
