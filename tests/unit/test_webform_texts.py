"""The form's texts files: every language says everything, and nothing collides with code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from channels.webform import form
from channels.webform.attachments import FORM_ERRORS
from channels.webform.i18n import CONTACT_OPTIONS, LANGUAGES, products, texts

TEMPLATES = Path(form.__file__).parent / "templates"
CODES = [language.code for language in LANGUAGES]


def shape(value: Any) -> Any:
    """The keys of a texts document, recursively (lists by length)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return len(value)
    return "text"


@pytest.mark.parametrize("code", CODES[1:])
def test_every_language_has_the_same_texts_as_french(code: str) -> None:
    assert shape(texts(code)) == shape(texts("fr"))


def test_no_text_key_hides_a_dict_method_in_templates() -> None:
    # Jinja reads t.copy as dict.copy: such a key would render as a method.
    assert not set(texts("fr")) & set(dir(dict))


def test_every_error_code_the_form_can_raise_has_a_sentence() -> None:
    source = Path(form.__file__).read_text()
    raised = set(re.findall(r'FieldError\(\s*"\w+",\s*"(\w+)"', source))
    raised |= set(FORM_ERRORS.values())
    notices = {"form_expired", "rate_limited", "request_too_large", "rejected", "unavailable"}
    for code in CODES:
        assert raised | notices <= set(texts(code)["errors"]), code


def test_every_product_has_a_label_in_every_language() -> None:
    for product in products():
        assert set(product["label"]) == set(CODES), product["code"]


def test_every_contact_option_is_named_in_every_language() -> None:
    for code in CODES:
        assert set(texts(code)["contact_options"]) == set(CONTACT_OPTIONS)


@pytest.mark.parametrize("code", CODES)
def test_the_page_states_both_deadlines_and_that_the_service_is_free(code: str) -> None:
    words = texts(code)
    steps = " ".join(words["next_steps"])
    assert "10" in steps and "40" in steps
    assert words["free"]


def test_arabic_keeps_numbers_and_the_circular_left_to_right() -> None:
    arabic = texts("ar")
    assert "\u206606 12 34 56 78\u2069" in arabic["hint_phone"]
    assert "\u206610/W/16\u2069" in arabic["intro"]
