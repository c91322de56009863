"""Replaying quarantined inputs through their channel once the cause is fixed.

An input refused at a channel's edge is kept with its reason. After the
cause is fixed (a limit raised, a check corrected), ``replay`` runs the
stored bytes through the channel's own parsing and the normal hand-off:
the item becomes a complaint, is marked resolved with its id, and a second
replay changes nothing. An input still refused stays in quarantine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from channels.email.intake import MailArrival, MailOutcome, ingest_mail
from config.settings import Settings, load_settings
from gateway.lib.services import Services, build_services
from gateway.ops.quarantine import replay
from gateway.store.quarantine import Quarantine, QuarantineItem
from tests.peers.imap import ARRIVED, complaint_mail
from tests.peers.processes import IntakeProcesses, env_for


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    built.store.api_keys.create("crm")
    try:
        yield built
    finally:
        built.close()


def quarantined(
    services: Services, channel: str, data: bytes, content_type: str, **ids: object
) -> QuarantineItem:
    item_id = services.store.complaints.quarantine(
        channel=channel,
        data=data,
        content_type=content_type,
        reason_code="invalid_field",
        reason="refused by a check since corrected",
        source_ids=dict(ids),
    )
    item = Quarantine(services.store.engine).get(item_id)
    assert item is not None
    return item


def test_mail_refused_for_its_size_becomes_a_complaint_once_the_limit_is_raised(
    settings: Settings,
) -> None:
    strict = build_services(load_settings(data_dir=settings.data_dir, email_max_bytes=1024))
    try:
        raw = complaint_mail(7) + b"\n" + b"x" * 2000 + b"\n"
        refused = ingest_mail(strict, MailArrival(raw=raw, received_at=ARRIVED))
        assert refused.outcome is MailOutcome.REJECTED
    finally:
        strict.close()
    services = build_services(settings)
    try:
        (item,) = Quarantine(services.store.engine).entries()
        result = replay(services, item)
        assert result.ok, result.detail
        message = services.store.complaints.get_by_reference(result.reference or "")
        assert message is not None and message.channel.value == "email"
        # Dated from its arrival (the legal clock's start), not from the quarantine.
        assert message.received_at == ARRIVED
        (resolved,) = Quarantine(services.store.engine).entries(resolved=True)
        assert resolved.resolved_at is not None
        assert resolved.complaint_id == result.complaint_id
        assert Quarantine(services.store.engine).entries() == []
    finally:
        services.close()


def test_api_body_replayed_under_its_client_and_key_is_recorded_once(services: Services) -> None:
    body = json.dumps(
        {"body": "Mon transfert de 900 DH n'est pas arrivé.", "customer": {"phone": "0661234567"}}
    ).encode()
    item = quarantined(
        services, "api", body, "application/json", api_client="crm", idempotency_key="t-1"
    )
    first = replay(services, item)
    assert first.ok and first.reference, first.detail
    again = replay(services, Quarantine(services.store.engine).get(item.id))  # type: ignore[arg-type]
    assert again.ok and again.complaint_id == first.complaint_id
    status = services.store.complaints.status(first.reference)
    assert status is not None and status[0].evidence.sha256 == item.sha256


def test_input_still_refused_stays_in_quarantine(services: Services) -> None:
    body = json.dumps({"body": "x", "customer": {"name": "sans contact"}}).encode()
    item = quarantined(services, "api", body, "application/json", api_client="crm")
    result = replay(services, item)
    assert not result.ok
    assert "customer" in result.detail
    assert [open_item.id for open_item in Quarantine(services.store.engine).entries()] == [item.id]


def test_web_form_post_replayed_becomes_a_webform_complaint(services: Services) -> None:
    request = httpx.Request(
        "POST",
        "http://gateway/",
        data={
            "name": "Salma",
            "phone": "0612345678",
            "text": "La carte est bloquée depuis hier, merci de m'aider.",
            "csrf_token": "1700000000.nonce42.mac",
        },
        files={"attachments": ("", b"", "application/octet-stream")},
    )
    body = request.read()
    item = quarantined(
        services, "webform", body, request.headers["content-type"], client="0123456789abcdef"
    )
    result = replay(services, item)
    assert result.ok, result.detail
    message = services.store.complaints.get_by_reference(result.reference or "")
    assert message is not None
    assert message.channel.value == "webform"
    assert message.customer.phone == "+212612345678"


def test_cli_replays_by_id_prefix_and_says_why_when_refused(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    good = quarantined(
        services,
        "api",
        json.dumps({"body": "Réclamation valable", "customer": {"email": "a@example.ma"}}).encode(),
        "application/json",
        api_client="crm",
    )
    bad = quarantined(services, "api", b"{not json", "application/json", api_client="crm")
    env = env_for(settings)
    listing = intake_processes.run("quarantine", "list", env=env)
    assert {line.split("\t")[0] for line in listing.stdout().splitlines()} == {good.id, bad.id}
    done = intake_processes.run("quarantine", "reprocess", good.id[:8], env=env)
    assert done.popen.returncode == 0, done.describe()
    assert done.stdout().split("\t")[1].startswith("CP-")
    # ``replay``: the old name of ``reprocess``, kept for one release.
    refused = intake_processes.run("quarantine", "replay", bad.id, env=env)
    assert refused.popen.returncode == 65
    assert "still refused" in refused.stderr()
    assert "deprecated" in refused.stderr().lower()
