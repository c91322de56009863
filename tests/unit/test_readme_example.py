"""The example message in the README is one a consumer could really receive."""

import json
import re
from pathlib import Path

import pytest

from normalizer.contract import ComplaintEvent
from normalizer.reference import parse_reference

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def _example_event() -> str:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    events = [block for block in blocks if '"specversion"' in block]
    assert len(events) == 1, "the README shows one example complaint event"
    return events[0]


def test_readme_example_message_satisfies_the_contract() -> None:
    event = ComplaintEvent.model_validate_json(_example_event())
    assert event.data.id == event.id
    assert event.subject == event.data.reference
    assert parse_reference(event.data.reference) == event.data.reference
    assert event.data.evidence.stored_at == f"blob:sha256:{event.data.evidence.sha256}"


def test_readme_example_is_plain_json_without_ellipses() -> None:
    raw = _example_event()
    assert "…" not in raw
    json.loads(raw)
