"""Helpers for acknowledgement tests: complaints as channels make them, the worker, the events.

``mail_complaint`` goes through the e-mail channel's real intake (so the
complaint carries the customer's Message-ID and the channel's authentication
verdict: by default ``pass``, from an ``Authentication-Results`` header of
an authserv-id the intake is told to trust, as our MX would write it;
``authentication="fail"`` or ``None`` for a mail that does not pass, since
only authenticated senders get an e-mail acknowledgement); ``other_complaint`` through
the store's hand-off for phone, letter or web form complaints.
``running_worker`` runs ``AckWorker`` in a thread against the real broker
and stops it when the block ends; ``ack_events`` reads ``event.ack.*`` from
the events queue as a downstream consumer would.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import select

from channels.email.intake import MailArrival, MailOutcome, ingest_mail
from gateway.acks.worker import AckWorker
from gateway.lib.services import Services
from gateway.store.acks import AckRecord
from gateway.store.db import reading
from gateway.store.tables import EventRow
from normalizer.contract import Channel, ComplaintMessage, Customer, Origin
from normalizer.draft import ComplaintDraft, RawInput
from router.broker import connect, topology_for
from router.publisher import declare_topology
from router.relay import build_relay
from tests.peers.processes import wait_until

# The authserv-id of "our MX" in tests: its Authentication-Results header is believed.
TRUSTED_MX = "mx.test.cashplus.ma"


def mail_complaint(
    services: Services,
    body: str,
    *,
    sender: str = "fatima.alaoui@example.ma",
    name: str = "Fatima Alaoui",
    subject: str = "Réclamation transfert",
    in_reply_to: str | None = None,
    authentication: str | None = "pass",
) -> ComplaintMessage:
    """An e-mail complaint; ``authentication`` is what our MX says of its sender (DMARC)."""
    mail = EmailMessage()
    if authentication is not None:
        domain = sender.rpartition("@")[2]
        mail["Authentication-Results"] = (
            f"{TRUSTED_MX}; dmarc={authentication} header.from={domain}"
        )
        trusting = services.settings.model_copy(update={"trusted_authserv_ids": TRUSTED_MX})
        services = dataclasses.replace(services, settings=trusting)
    mail["From"] = f"{name} <{sender}>"
    mail["To"] = "contact@cashplus.ma"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = make_msgid(domain="example.ma")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    mail.set_content(body)
    result = ingest_mail(
        services,
        MailArrival(raw=mail.as_bytes(), received_at=datetime.now(UTC), envelope_sender=sender),
    )
    assert result.outcome is MailOutcome.COMPLAINT, result
    found = services.store.complaints.get_by_reference(str(result.reference))
    assert found is not None
    return found


def other_complaint(
    services: Services,
    channel: Channel,
    body: str,
    customer: Customer,
    *,
    received_ago: timedelta = timedelta(0),
    origin: Origin = Origin.CUSTOMER,
) -> ComplaintMessage:
    """A complaint of any channel through the real pipeline and store (received ``ago``)."""
    from channels.handoff import hand_off

    received_at = datetime.now(UTC) - received_ago
    raw = RawInput(
        channel=channel,
        data=body.encode(),
        content_type="text/plain; charset=utf-8",
        received_at=received_at,
        dedup_key=f"test:{uuid.uuid4()}",
    )
    draft = ComplaintDraft(
        channel=channel, received_at=received_at, body=body, customer=customer, origin=origin
    )
    return hand_off(services, raw, draft).message


def publish(services: Services) -> None:
    outcome = build_relay(services.settings, services.store).publish_pending()
    assert outcome.complete, "the relay could not publish everything"


@contextmanager
def running_worker(services: Services) -> Iterator[AckWorker]:
    """The acknowledgement worker consuming ``complaints.acks`` in a thread of this process."""
    with connect(services.settings) as connection:  # the queue exists before anything is sent
        declare_topology(connection, topology_for(services.settings))
    worker = AckWorker(services)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"


def ack_row(services: Services, complaint_id: str) -> AckRecord | None:
    return services.store.acks.get(complaint_id)


def wait_for_row(services: Services, complaint_id: str, *statuses: str) -> AckRecord:
    def settled() -> AckRecord | None:
        row = ack_row(services, complaint_id)
        return row if row is not None and row.status in statuses else None

    return wait_until(settled, f"an acknowledgement row in state {statuses}")


def ack_events(services: Services, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """``count`` envelopes from the events queue (publishing the outbox first)."""
    publish(services)
    found: list[dict[str, Any]] = []
    queue = topology_for(services.settings).events
    with connect(services.settings) as connection, connection.SimpleQueue(queue) as simple:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while len(found) < count and datetime.now(UTC) < deadline:
            try:
                message = simple.get(block=True, timeout=1)
            except Exception:  # kombu's Empty: keep polling until the deadline
                continue
            found.append(json.loads(message.body))
            message.ack()
    assert len(found) == count, f"expected {count} event(s), got {len(found)}"
    return found


def event_kinds(services: Services) -> list[str]:
    """The kinds of the events recorded in the store (``ack.sent``...), oldest first."""
    with reading(services.store.engine) as session:
        return list(session.scalars(select(EventRow.kind).order_by(EventRow.created_at)))
