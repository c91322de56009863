"""One complaint is one message on ``complaints.inbound``, even when a consumer retries.

On the embedded broker (kombu's filesystem transport) a message that the
acknowledgement worker puts back for a later try, or that a consumer holds
when it stops, goes back into the queue it came from and nowhere else. kombu's
virtual transports put it back into every queue bound to the exchange and
routing key: each retry of an acknowledgement used to publish the complaint
again on ``complaints.inbound`` with the same id.

The end-to-end cases run ``intake run`` on the embedded defaults, with the
SMS provider refusing every send (so the acknowledgement worker retries), and
deliver every webhook of each channel that holds a complaint before releasing
it three times, as Twilio does on a slow answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from config.settings import Settings
from router.broker import connect, topology_for
from router.publisher import declare_topology
from tests.peers.processes import (
    IntakeProcess,
    IntakeProcesses,
    env_for,
    free_port,
    wait_for_port,
    wait_until,
)
from tests.peers.queues import drain
from tests.peers.twilio import (
    MediaServer,
    TwilioWebhooks,
    call_params,
    espeak_wav,
    image_bytes,
    recording_url,
    sid,
    twilio_settings,
)

CALLER = "+212661234567"
RECEIVED = "ma.cashplus.complaint.received.v1"


def publish_complaint(settings: Settings, body: dict[str, object]) -> None:
    topology = topology_for(settings)
    with connect(settings) as connection:
        declare_topology(connection, topology)
        producer = connection.Producer()
        producer.publish(body, exchange=topology.exchange, routing_key="complaint.sms.fr")


# -- the transport itself ---------------------------------------------------------
def test_a_requeued_message_goes_back_to_its_own_queue_only(settings: Settings) -> None:
    publish_complaint(settings, {"id": "c-1"})
    topology = topology_for(settings)

    with connect(settings) as connection:
        acks = topology.acks.bind(connection.default_channel)
        message = acks.get()
        assert message is not None
        message.requeue()

    assert [body["id"] for body in drain(settings, "inbound")] == ["c-1"]
    assert [body["id"] for body in drain(settings, "acks")] == ["c-1"]


def test_a_message_held_when_its_consumer_stops_goes_back_to_its_own_queue_only(
    settings: Settings,
) -> None:
    publish_complaint(settings, {"id": "c-2"})
    topology = topology_for(settings)

    with connect(settings) as connection:
        acks = topology.acks.bind(connection.default_channel)
        assert acks.get() is not None  # taken, never acknowledged: restored at close

    assert [body["id"] for body in drain(settings, "inbound")] == ["c-2"]
    assert [body["id"] for body in drain(settings, "acks")] == ["c-2"]


# -- the whole service, every channel that holds before it releases -------------
@dataclass
class Line:
    service: IntakeProcess
    hooks: TwilioWebhooks
    media: MediaServer
    settings: Settings

    def post_three_times(self, path: str, params: dict[str, str], query: str = "") -> None:
        for _ in range(3):
            answer = self.hooks.post(path, params, query=query)
            assert answer.status_code == 200, (path, answer.text)

    def acknowledgement_retried(self) -> bool:
        # The provider answers every send with an error: each try is logged.
        return self.service.stderr().count("not sent yet") >= 2


@pytest.fixture
def line(settings: Settings, intake_processes: IntakeProcesses) -> Iterator[Line]:
    # The "API" of this media server answers every POST (an SMS send) with 501:
    # the acknowledgement worker retries, putting the complaint back each time.
    with MediaServer() as media:
        phone = twilio_settings(
            settings,
            twilio_api_base_url=media.base_url,
            message_media_wait=30.0,
            call_transcript_wait=3.0,
        )
        env = env_for(phone, http_port=free_port())
        service = intake_processes.start("run", env=env)
        wait_for_port(int(env["INTAKE_HTTP_PORT"]), service)
        hooks = TwilioWebhooks(target=f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}")
        yield Line(service, hooks, media, phone)
        hooks.close()


def one_complaint_after_retries(line: Line) -> dict[str, object]:
    received: list[dict[str, object]] = []

    def published_and_retried() -> bool:
        received.extend(drain(line.settings, "inbound"))
        return bool(received) and line.acknowledgement_retried()

    wait_until(published_and_retried, "the complaint out, its ack retried", timeout=60)
    received.extend(drain(line.settings, "inbound"))
    ids = [event["id"] for event in received]
    assert len(ids) == len(set(ids)), f"published more than once: {ids}"
    first = [event for event in received if event["type"] == RECEIVED]
    assert len(first) == 1, ids
    data = first[0]["data"]
    assert isinstance(data, dict)
    return data


def test_an_sms_delivered_three_times_is_one_message_on_the_queue(line: Line) -> None:
    params = {
        "MessageSid": sid("SM"),
        "From": CALLER,
        "To": "+212520020915",
        "Body": "Mon transfert envoyé hier n'est toujours pas arrivé.",
        "NumMedia": "0",
    }
    line.post_three_times("/twilio/messaging", params)

    complaint = one_complaint_after_retries(line)

    assert complaint["channel"] == "sms"


def test_an_sms_held_for_its_photo_is_one_message_on_the_queue(line: Line) -> None:
    message_sid = sid("MM")
    url = line.media.add(f"/media/{message_sid}.png", image_bytes("PNG"), "image/png")
    params = {
        "MessageSid": message_sid,
        "From": CALLER,
        "To": "+212520020915",
        "Body": "Voici le reçu du transfert qui n'est pas arrivé.",
        "NumMedia": "1",
        "MediaUrl0": url,
        "MediaContentType0": "image/png",
    }
    line.post_three_times("/twilio/messaging", params)

    complaint = one_complaint_after_retries(line)

    assert len(complaint["attachments"]) == 1  # type: ignore[arg-type]


def test_a_call_held_for_its_recording_is_one_message_on_the_queue(line: Line) -> None:
    call_sid, recording_sid = sid("CA"), sid("RE")
    url = recording_url(line.media.base_url, recording_sid)
    wav = espeak_wav("Bonjour, mon transfert n'est jamais arrivé.", "fr")
    line.media.add(url.removeprefix(line.media.base_url) + ".wav", wav, "audio/x-wav")
    recording = call_params(
        call_sid, RecordingSid=recording_sid, RecordingUrl=url, RecordingDuration="4"
    )
    line.post_three_times("/twilio/voice", call_params(call_sid, CallStatus="ringing"))
    line.post_three_times(
        "/twilio/voice/language", call_params(call_sid, Digits="2"), query="attempt=1"
    )
    line.post_three_times("/twilio/voice/recorded", {**recording, "Digits": "#"})
    line.post_three_times(
        "/twilio/voice/recording-status", {**recording, "RecordingStatus": "completed"}
    )
    line.post_three_times(
        "/twilio/voice/status", call_params(call_sid, CallStatus="completed", CallDuration="40")
    )

    complaint = one_complaint_after_retries(line)

    assert complaint["channel"] == "phone"
    assert complaint["evidence"]["call_sid"] == call_sid  # type: ignore[index]
