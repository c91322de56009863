"""The acknowledgement worker when RabbitMQ goes silent right after an e-mail went out.

The worker reads ``complaints.acks`` on the machine's RabbitMQ through
``TcpProxy``; the link goes silent (``blackhole``: nothing forwarded,
nothing closed) just after the real SMTP relay took the acknowledgement, so
the worker's ack of the delivery never reaches the broker. The worker must
still stop within seconds when asked, and once the link is back the
complaint comes again and is recognised: acknowledged to the broker, not
sent to the customer a second time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import load_settings
from gateway.acks.acknowledger import Acknowledger
from gateway.acks.policy import EMAIL
from gateway.acks.senders import Outgoing, Sender, Sent
from gateway.acks.worker import AckWorker
from gateway.lib.services import Services, build_services
from router.consumer import GOODBYE_SECONDS
from tests.peers.acks import mail_complaint, publish, running_worker, wait_for_row
from tests.peers.processes import wait_until
from tests.peers.smtp_capture import SmtpCapture, smtp_capture
from tests.peers.tcpproxy import TcpProxy

COMPLAINT = "Bonjour, mon transfert de 1500 dirhams vers Agadir n'est jamais arrivé."
# The subscription's goodbye bound, plus a poll and a loaded 2-core machine.
STOP_BOUND = GOODBYE_SECONDS + 6.0


@pytest.fixture
def relay() -> Iterator[SmtpCapture]:
    with smtp_capture() as capture:
        yield capture


@pytest.fixture
def services(
    data_dir: Path, topology_prefix: str, rabbitmq_proxy: TcpProxy, relay: SmtpCapture
) -> Iterator[Services]:
    built = build_services(
        load_settings(
            data_dir=data_dir,
            broker_url=rabbitmq_proxy.url(),
            topology_prefix=topology_prefix,
            smtp_relay_url=SecretStr(relay.url),
            relay_max_backoff=1.0,
        )
    )
    try:
        yield built
    finally:
        built.close()


class SilencedAfterSending:
    """The real e-mail sender; the broker link goes silent as soon as the relay took the mail."""

    def __init__(self, sender: Sender, proxy: TcpProxy) -> None:
        self.sender = sender
        self.proxy = proxy

    def send(self, outgoing: Outgoing) -> Sent:
        sent = self.sender.send(outgoing)
        self.proxy.blackhole()
        return sent


def test_an_ack_lost_on_a_silent_broker_stops_promptly_and_never_sends_twice(
    services: Services, relay: SmtpCapture, rabbitmq_proxy: TcpProxy
) -> None:
    complaint = mail_complaint(services, COMPLAINT)
    publish(services)
    acknowledger = Acknowledger(services)
    acknowledger.senders[EMAIL] = SilencedAfterSending(acknowledger.senders[EMAIL], rabbitmq_proxy)
    worker = AckWorker(services, acknowledger)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    wait_until(lambda: worker.handled == 1, "the acknowledgement sent and its delivery acked")
    wait_for_row(services, complaint.id, "sent")

    stop.set()
    thread.join(STOP_BOUND)
    assert not thread.is_alive(), "the worker is still waiting on the silent broker"

    rabbitmq_proxy.restore()  # the broker sees the old connection end: the delivery is back
    with running_worker(services) as again:
        wait_until(lambda: again.handled == 1, "the complaint delivered again and acked")
    assert len(relay.messages()) == 1
