"""The operator page in a real headless browser (Debian chromium via Playwright).

``intake run`` on RabbitMQ serves ``/ops/``; a staff member logs in, sees
the charts and the lists, replays a quarantined API call and a text
message (they become complaints), is told why a refused letter is still
refused, and replays a dead letter (it goes back to its queue). Screenshots go
to tests/artifacts/ops-*.png.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from kombu import Producer

from config.settings import Settings
from gateway.lib.services import build_services
from normalizer.contract import Channel
from router.broker import connect, topology_for
from router.publisher import declare_topology
from tests.peers.browser import screenshot
from tests.peers.complaints import record
from tests.peers.processes import (
    INTAKE,
    IntakeProcesses,
    env_for,
    free_port,
    wait_for_port,
    wait_until,
)
from tests.peers.staff import log_in as staff_log_in

PASSWORD = "exploitation-2025-casa"


def _dead_letter(settings: Settings, event_id: str) -> None:
    """A message a consumer of complaints.inbound rejected: RabbitMQ moves it to complaints.dead.

    Put in complaints.inbound alone (default exchange): through the topic
    exchange the acknowledgement worker would get a copy too.
    """
    topology = topology_for(settings)
    with connect(settings) as connection:
        declare_topology(connection, topology)
        body = json.dumps({"id": event_id, "data": {"reference": "CP-DEAD-0001"}})
        Producer(connection.default_channel).publish(
            body, routing_key=topology.inbound.name, message_id=event_id
        )
        inbound = topology.inbound.bind(connection.default_channel)
        # A quorum queue commits the message through Raft: it may not be there at once.
        wait_until(lambda: inbound.get(no_ack=False), "the message in complaints.inbound").reject(
            requeue=False
        )


@pytest.fixture
def gateway_url(amqp_settings: Settings, intake_processes: IntakeProcesses) -> Iterator[str]:
    services = build_services(amqp_settings)
    try:
        services.store.api_keys.create("crm")
        for channel in (Channel.EMAIL, Channel.EMAIL, Channel.WEBFORM):
            record(services.store, channel=channel)
        services.store.complaints.quarantine(
            channel="api",
            data=json.dumps(
                {"body": "Virement bloqué", "customer": {"phone": "0661234567"}}
            ).encode(),
            content_type="application/json",
            reason_code="invalid_field",
            reason="customer.phone: refusé par une règle corrigée depuis",
            source_ids={"api_client": "crm"},
        )
        services.store.complaints.quarantine(
            channel="letter",
            data=b"MZ\x90\x00",
            content_type="application/octet-stream",
            reason_code="unsupported_type",
            reason="not a PDF, TIFF, JPEG or PNG file",
        )
        services.store.complaints.quarantine(
            channel="sms",
            data=urlencode(
                {
                    "MessageSid": "SM" + "5" * 32,
                    "From": "+212661234567",
                    "To": "+212520020915",
                    "Body": "Bghit nbloqui la carte dyali, tsre9at",
                    "NumMedia": "0",
                }
            ).encode(),
            content_type="application/x-www-form-urlencoded",
            reason_code="missing_parameter",
            reason="message webhook refusé par une règle corrigée depuis",
            source_ids={"path": "/twilio/messaging"},
        )
    finally:
        services.close()
    _dead_letter(amqp_settings, "evt-dead-1")
    port = free_port()
    env = env_for(amqp_settings, http_port=port)
    subprocess.run(
        [INTAKE, "users", "add", "karim", "--password-stdin"],
        input=f"{PASSWORD}\n".encode(),
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    process = intake_processes.start("run", env=env)
    wait_for_port(port, process, timeout=60)
    yield f"http://127.0.0.1:{port}"


def log_in(page, base: str) -> None:
    staff_log_in(page, base, "/ops/", ("karim", PASSWORD))


def test_operator_sees_charts_and_lists_then_replays_a_quarantined_call(
    page, gateway_url: str
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, gateway_url)
    assert page.locator("svg.chart").count() == 4
    assert page.locator("#plot-channels rect title").all_inner_texts()  # bars with figures
    assert page.locator("tr.quarantined").count() == 3
    assert page.locator("#quarantine-count").inner_text() == "3"
    assert page.locator("tr.dead-letter").count() == 1
    screenshot(page, "ops-fr")

    row = page.locator("tr.quarantined", has_text="customer.phone")
    row.locator("button.replay").click()
    page.wait_for_url("**/ops/?*")
    notice = page.locator("#notice").inner_text()
    assert "CP-" in notice, notice
    assert page.locator("tr.quarantined").count() == 2  # the letter and the text message
    screenshot(page, "ops-fr-replayed")


def test_operator_replays_a_text_message_and_is_told_why_a_letter_is_still_refused(
    page, gateway_url: str
) -> None:
    log_in(page, gateway_url)

    page.locator("tr.quarantined", has_text="sms").locator("button.replay").click()
    page.wait_for_url("**/ops/?*")
    assert "complaint recorded CP-" in page.locator("#notice").inner_text()
    assert page.locator("tr.quarantined", has_text="sms").count() == 0

    page.locator("tr.quarantined", has_text="unsupported_type").locator("button.replay").click()
    page.wait_for_url("**/ops/?*")
    notice = page.locator("#notice").inner_text()
    assert "Toujours refusée : unsupported_type" in notice, notice
    assert page.locator("tr.quarantined", has_text="unsupported_type").count() == 1


def test_operator_replays_a_dead_letter_back_to_its_queue(page, gateway_url: str) -> None:
    log_in(page, gateway_url)
    page.locator("tr.dead-letter button.replay").click()
    page.wait_for_url("**/ops/?*")
    assert "1 message(s)" in page.locator("#notice").inner_text()
    assert page.locator("tr.dead-letter").count() == 0
    assert page.locator("#dead-count").inner_text() == "0"


def test_arabic_operator_page_is_right_to_left(page, gateway_url: str) -> None:
    log_in(page, gateway_url)
    page.goto(gateway_url + "/ops/?lang=ar")
    assert page.get_attribute("html", "dir") == "rtl"
    assert "الشكايات" in page.locator("#intake h2").inner_text()
    screenshot(page, "ops-ar")
