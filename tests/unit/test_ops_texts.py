"""The operator pages' texts: every key in every language of ``gateway/ops/texts.json``."""

from __future__ import annotations

import json
from pathlib import Path

import gateway.ops
from gateway.lib.http.pages import LANGUAGES

TEXTS = Path(gateway.ops.__file__).parent / "texts.json"


def test_the_operator_texts_have_the_same_keys_in_every_page_language() -> None:
    table = json.loads(TEXTS.read_text("utf-8"))
    assert set(table) == set(LANGUAGES)
    french = set(table["fr"])
    for language in LANGUAGES:
        assert set(table[language]) == french, language
        assert all(text.strip() for text in table[language].values()), language
