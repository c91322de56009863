import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.admin import render_schema
from normalizer.contract import (
    KNOWN_LANGUAGES,
    Channel,
    ComplaintEvent,
    ComplaintMessage,
    Customer,
    Evidence,
    Language,
    read_as_consumer,
    schema_documents,
)
from normalizer.deadlines import compute_deadlines
from normalizer.reference import new_reference

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def make_message(**overrides: object) -> ComplaintMessage:
    received = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    deadlines = compute_deadlines(received)
    fields: dict[str, object] = {
        "id": "0b8f6a52-3f0e-4a53-9a1e-5d7b8c9d0e1f",
        "reference": new_reference(),
        "channel": Channel.EMAIL,
        "received_at": received,
        "ack_due_at": deadlines.ack_due_at,
        "answer_due_at": deadlines.answer_due_at,
        "processed_at": received,
        "language": Language(tag="ary-Latn", confidence=0.9, method="lexicon"),
        "customer": Customer(name="Fatima", phone="+212661234567"),
        "body": "salam, la carte dyali tblokat",
        "evidence": Evidence(
            stored_at="blob:sha256:" + "a" * 64,
            sha256="a" * 64,
            size=10,
            content_type="message/rfc822",
            message_id="<x@example.ma>",
        ),
    }
    fields.update(overrides)
    return ComplaintMessage.model_validate(fields)


def test_every_committed_schema_is_generated_from_a_model() -> None:
    committed = sorted(path.name for path in SCHEMAS.glob("*.json"))
    assert committed == sorted(schema_documents()), (
        "schemas/ and the models disagree on which files exist: run `intake schema --write schemas`"
    )


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_committed_schema_equals_the_one_generated_from_the_model(name: str) -> None:
    committed = (SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == render_schema(schema_documents()[name]), (
        f"schemas/{name} is stale: run `intake schema --write schemas`"
    )


def test_message_round_trips_through_json() -> None:
    message = make_message()
    again = ComplaintMessage.model_validate_json(message.model_dump_json())
    assert again == message


def test_event_envelope_round_trips_and_carries_the_complaint_id() -> None:
    message = make_message()
    event = ComplaintEvent.wrap(message, "urn:test")
    parsed = json.loads(event.model_dump_json())
    assert parsed["specversion"] == "1.0"
    assert parsed["id"] == message.id
    assert parsed["subject"] == message.reference
    assert ComplaintEvent.model_validate(parsed) == event


@pytest.mark.parametrize("tag", [*sorted(KNOWN_LANGUAGES), "de", "tr"])
def test_language_tags_of_the_contract_are_accepted(tag: str) -> None:
    assert Language(tag=tag, confidence=1, method="declared").tag == tag


@pytest.mark.parametrize("tag", ["ary_Latn", "FR", "arabic", ""])
def test_malformed_language_tags_are_refused(tag: str) -> None:
    with pytest.raises(ValidationError):
        Language(tag=tag, confidence=1, method="declared")


def test_phone_must_be_e164() -> None:
    with pytest.raises(ValidationError, match="phone"):
        Customer(phone="0661234567")


def test_reference_without_valid_shape_is_refused() -> None:
    with pytest.raises(ValidationError, match="reference"):
        make_message(reference="CP-0000-0000")


def test_naive_received_at_is_refused() -> None:
    with pytest.raises(ValidationError, match="received_at"):
        make_message(received_at=datetime(2026, 11, 26, 9, 0))


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        make_message(colour="blue")


def _later_minor_event(version: str) -> str:
    """What a later 1.x gateway could publish: a newer minor, properties we do not know."""
    document = json.loads(ComplaintEvent.wrap(make_message(), "test").model_dump_json())
    document["traceparent"] = "00-abc-def-01"
    document["data"]["schema_version"] = version
    document["data"]["routing_hint"] = {"desk": "transfers"}
    document["data"]["customer"]["segment"] = "s" * 64
    document["data"]["evidence"]["chain_sequence"] = 12
    return json.dumps(document)


def test_a_consumer_reads_a_later_minor_and_drops_what_it_does_not_know() -> None:
    body = _later_minor_event("1.9")
    with pytest.raises(ValidationError):  # the producer's check stays strict
        ComplaintEvent.model_validate_json(body)
    event = read_as_consumer(ComplaintEvent, body)
    assert event.data.schema_version == "1.9"
    assert event.data.customer.phone == "+212661234567"
    assert "segment" not in event.data.customer.model_dump()


@pytest.mark.parametrize("version", ["2.0", "1.01", "1", "v1.4"])
def test_a_consumer_refuses_another_major_or_a_malformed_version(version: str) -> None:
    with pytest.raises(ValidationError, match="schema_version"):
        read_as_consumer(ComplaintEvent, _later_minor_event(version))


def test_a_consumer_still_refuses_a_wrong_value_of_a_known_field() -> None:
    document = json.loads(_later_minor_event("1.4"))
    document["data"]["channel"] = "fax"  # closed set: a new value is a new major
    with pytest.raises(ValidationError, match="channel"):
        read_as_consumer(ComplaintEvent, json.dumps(document))
