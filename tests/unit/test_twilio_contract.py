"""The amendment event of the contract: its identity (its schema file: test_contract.py)."""

from __future__ import annotations

import json

from normalizer.contract import ComplaintAmendedEvent, ComplaintEvent
from tests.unit.test_contract import make_message


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
