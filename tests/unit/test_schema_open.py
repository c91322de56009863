"""The schemas generated from the contract are open to additions within v1 (README)."""

import json
from typing import Any

import pytest

from normalizer.contract import ComplaintEvent, schema_documents
from tests.peers.schema_history import SchemaVersion, closing_parts
from tests.unit.test_contract import make_message

FILES = sorted(schema_documents())


def _current(file: str) -> SchemaVersion:
    return SchemaVersion(file, "generated", schema_documents()[file])


def _objects(node: object) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append(node)
        for value in node.values():
            found.extend(_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_objects(value))
    return found


@pytest.mark.parametrize("file", FILES)
def test_every_object_of_the_schema_allows_properties_it_does_not_list(file: str) -> None:
    document = schema_documents()[file]
    assert closing_parts(document) == []
    objects = _objects(document)
    assert objects, file
    assert all(obj.get("additionalProperties", True) is not False for obj in objects)


def _version_schema(file: str) -> dict[str, Any]:
    document = schema_documents()[file]
    found = [
        obj["properties"]["schema_version"]
        for obj in _objects(document)
        if "schema_version" in obj["properties"]
    ]
    assert len(found) == 1, file
    return {"$defs": document.get("$defs", {}), **found[0]}


VERSIONED = ["complaint.v1.json", "complaint-event.v1.json", "intake-event.v1.json"]


@pytest.mark.parametrize("file", VERSIONED)
def test_schema_version_accepts_every_minor_of_major_one(file: str) -> None:
    schema = SchemaVersion(file, "generated", _version_schema(file))
    for minor in range(100):
        assert schema.errors(f"1.{minor}") == [], f"1.{minor}"


@pytest.mark.parametrize("value", ["2.0", "0.9", "1", "1.", "1.x", "1.01", "11.0", "v1.3", 1.3])
@pytest.mark.parametrize("file", VERSIONED)
def test_schema_version_refuses_another_major_and_malformed(file: str, value: object) -> None:
    schema = SchemaVersion(file, "generated", _version_schema(file))
    assert schema.errors(value) != []


def _later_minor(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as a later 1.x could publish it: new fields at the top and inside objects."""
    return {
        **data,
        "schema_version": "1.9",
        "priority": "high",
        "evidence": {**data["evidence"], "archive_id": "arc-1"},
        "customer": {**data["customer"], "cin": "AB123456"},
        "language": {**data["language"], "script": "Latn"},
    }


def test_a_later_minor_with_new_fields_validates_against_the_current_schemas() -> None:
    event = json.loads(ComplaintEvent.wrap(make_message(), "urn:test").model_dump_json())
    later = {**event, "traceparent": "00-abc-def-01", "data": _later_minor(event["data"])}
    assert _current("complaint.v1.json").errors(later["data"]) == []
    assert _current("complaint-event.v1.json").errors(later) == []


def test_the_schemas_still_refuse_what_breaks_a_consumer() -> None:
    data = json.loads(make_message().model_dump_json())
    complaint = _current("complaint.v1.json")
    assert complaint.errors({**data, "schema_version": "2.0"})
    assert complaint.errors({**data, "channel": "carrier-pigeon"})  # value sets stay closed
    assert complaint.errors({key: value for key, value in data.items() if key != "reference"})
    assert complaint.errors({**data, "needs_review": "yes"})  # a field is never retyped
