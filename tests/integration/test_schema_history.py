"""Consumers keep working within v1: every schema file of every release validates what we publish.

The gateway publishes through its own path (the e-mail channel's intake, the
letters queue, the outbox relay) to the machine's RabbitMQ; the messages are
read back from the queues a downstream consumer reads, and each is validated
against every open version of its schema files that git history holds, the
working tree's included. Versions from before the rule (README,
"Compatibility") are closed; they must be exactly the ones listed in
``schemas/closed-versions.tsv``, so none is skipped silently and a closed
schema committed later fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.email.intake import MailArrival, MailOutcome, ingest_mail
from channels.letters import intake as letters_intake
from channels.letters.intake import LetterFile, LetterUpload, accept_letter
from gateway.lib.services import Services
from gateway.store.letters import DONE, LetterOutcome
from gateway.store.revisions import Outcome
from normalizer.contract import (
    AMENDED_EVENT_TYPE,
    EVENT_TYPE,
    SCHEMA_VERSION,
    schema_documents,
)
from tests.peers import scans
from tests.peers.acks import mail_complaint, publish
from tests.peers.imap import complaint_mail
from tests.peers.queues import drain
from tests.peers.schema_history import (
    WORKING_TREE,
    SchemaVersion,
    closing_parts,
    history,
    listed_closed,
    require_full_history,
)

FILES = sorted(schema_documents())
CONTRACT_1_2 = "7400f0db7a77ec525d33101c4cf3deb29bca9f7a"  # closed, listed


@pytest.fixture(scope="module")
def versions() -> dict[str, list[SchemaVersion]]:
    require_full_history()
    return {file: history(file) for file in FILES}


def open_versions(versions: dict[str, list[SchemaVersion]], file: str) -> list[SchemaVersion]:
    found = [version for version in versions[file] if not closing_parts(version.document)]
    assert found, f"no open version of {file}: the working tree's at least must be open"
    return found


def test_closed_versions_in_history_are_exactly_the_listed_ones(
    versions: dict[str, list[SchemaVersion]],
) -> None:
    closed = {
        (version.commit, file)
        for file in FILES
        for version in versions[file]
        if closing_parts(version.document)
    }
    assert (WORKING_TREE, "complaint.v1.json") not in closed
    unlisted = closed - listed_closed()
    assert not unlisted, (
        f"closed schema versions not in schemas/closed-versions.tsv: {sorted(unlisted)}; "
        "a schema of v1 must stay open to additions (README, Compatibility)"
    )
    gone = listed_closed() - closed
    assert not gone, f"schemas/closed-versions.tsv lists versions history does not hold: {gone}"


@pytest.fixture
def published(
    amqp_services: Services, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """What a downstream consumer reads after the gateway published one of each kind."""
    services = amqp_services
    # An e-mail complaint whose sender passed authentication: ``details`` (1.3).
    mail_complaint(services, "Bonjour, mon transfert de 2000 DH n'est pas arrivé à Agadir.")
    # An out-of-office reply: an intake event, not a complaint.
    autoreply = ingest_mail(
        services,
        MailArrival(raw=complaint_mail(7, auto_reply=True), received_at=datetime.now(UTC)),
    )
    assert autoreply.outcome is MailOutcome.AUTO_REPLY, autoreply
    # A letter published before it was read (its hold over), then amended with its text.
    monkeypatch.setattr(letters_intake, "OCR_HOLD", timedelta(0))
    letter = accept_letter(
        services,
        LetterUpload(
            files=[LetterFile("l.pdf", scans.text_pdf(("Lettre de reclamation " * 4,)))],
            source="api",
        ),
    )
    publish(services)
    queue = services.store.letters
    row = queue.claim(timedelta(minutes=5))
    assert row is not None and row.id == letter.letter_id
    stored = services.store.complaints.get_by_reference(letter.reference)
    assert stored is not None
    read = stored.model_copy(update={"body": "Lettre lue par une personne", "subject": None})
    revision = queue.complete(row.id, LetterOutcome(DONE, read))
    assert revision is not None and revision.outcome is Outcome.AMENDED
    publish(services)
    yield {
        "inbound": drain(services.settings, "inbound"),
        "events": drain(services.settings, "events"),
    }


def _validate(version: SchemaVersion, instance: object, what: str, failures: list[str]) -> None:
    for error in version.errors(instance):
        failures.append(f"{version.file} at {version.commit}: {what}: {error}")


def test_every_open_schema_version_in_history_validates_what_the_gateway_publishes(
    versions: dict[str, list[SchemaVersion]], published: dict[str, list[dict[str, Any]]]
) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in published["inbound"] + published["events"]:
        by_type.setdefault(str(event["type"]), []).append(event)
    received, amended = by_type.pop(EVENT_TYPE, []), by_type.pop(AMENDED_EVENT_TYPE, [])
    intake_events = by_type.pop("ma.cashplus.intake.email.autoreply.v1", [])
    # What the check is made of: it cannot pass on an empty queue.
    assert len(received) == 2 and len(amended) == 1 and len(intake_events) == 1, published
    assert not by_type, f"messages of a type this check does not know: {sorted(by_type)}"
    assert any(event["data"]["details"].get("authentication") for event in received)
    assert {event["data"]["schema_version"] for event in received + amended} == {SCHEMA_VERSION}

    # (schema file, the part of each message it describes, the messages)
    checks: list[tuple[str, str, list[dict[str, Any]]]] = [
        ("complaint-event.v1.json", "envelope", received),
        ("complaint-amended.v1.json", "envelope", amended),
        ("complaint.v1.json", "data", received + amended),
        ("intake-event.v1.json", "envelope", intake_events),
    ]
    failures: list[str] = []
    checked = 0
    for file, part, events in checks:
        for version in open_versions(versions, file):
            for event in events:
                instance = event if part == "envelope" else event["data"]
                _validate(version, instance, f"{event['type']} {event['id']}", failures)
                checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 5

    # The defect the rule mends, and proof the validator reads: the closed 1.2 file
    # (listed) refuses a 1.3 complaint for its schema_version and its `details`.
    (contract_1_2,) = [
        version for version in versions["complaint.v1.json"] if version.commit == CONTRACT_1_2
    ]
    errors = "\n".join(contract_1_2.errors(received[0]["data"]))
    assert "schema_version" in errors and "details" in errors, errors
