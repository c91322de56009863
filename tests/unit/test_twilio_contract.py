"""The amendment event of the contract: its schema file, its identity."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.cli import render_schema
from normalizer.contract import ComplaintAmendedEvent, ComplaintEvent, schema_documents
from tests.unit.test_contract import make_message

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_amendment_schema_equals_the_one_generated_from_the_model() -> None:
    committed = (SCHEMAS / "complaint-amended.v1.json").read_text(encoding="utf-8")
    assert committed == render_schema(schema_documents()["complaint-amended.v1.json"])


def test_amendment_carries_the_same_complaint_under_its_own_event_id() -> None:
    message = make_message()
    amended = ComplaintAmendedEvent.wrap(
        message, "urn:test", event_id="e-1", changed=["body", "language"]
    )
    parsed = json.loads(amended.model_dump_json())

    assert parsed["type"] == "ma.cashplus.complaint.amended.v1"
    assert parsed["id"] == "e-1" != message.id
    assert parsed["data"]["id"] == message.id
    assert parsed["subject"] == ComplaintEvent.wrap(message, "urn:test").subject
    assert parsed["amendedfields"] == "body,language"
    assert ComplaintAmendedEvent.model_validate(parsed) == amended


def test_missing_media_round_trips_in_the_evidence() -> None:
    message = make_message()
    evidence = message.evidence.model_copy(
        update={"recording_url": "https://api.twilio.com/x/RE1", "missing_media": ["https://m/1"]}
    )
    again = type(message).model_validate_json(
        message.model_copy(update={"evidence": evidence}).model_dump_json()
    )
    assert again.evidence.missing_media == ["https://m/1"]
