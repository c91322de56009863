"""The committed .eml fixtures are exactly what the builder script writes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_committed_fixtures_match_the_builder(builder, eml):
    for name, raw in builder.build_all().items():
        assert eml(name) == raw, f"{name} differs: rerun tests/fixtures/mail/build_fixtures.py"
