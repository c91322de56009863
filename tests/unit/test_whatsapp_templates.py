"""The WhatsApp acknowledgement templates setting: one approved ContentSid per language."""

from __future__ import annotations

import pytest

from config.settings import ConfigError, load_settings
from config.templates import parse_content_sids

SID = "HX" + "0a" * 16


def test_whatsapp_templates_are_one_content_sid_per_language() -> None:
    assert parse_content_sids(f"fr={SID}, ar={SID}") == {"fr": SID, "ar": SID}
    with pytest.raises(ConfigError, match="INTAKE_TWILIO_WHATSAPP_ACK_TEMPLATES"):
        load_settings(twilio_whatsapp_ack_templates="fr=HX123")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (f"fr={SID},fr={SID}", "two templates for one language"),
        ("fr=HXnothex", "expected LANGUAGE=HX"),
        (f"French={SID}", "expected LANGUAGE=HX"),
    ],
)
def test_a_malformed_template_list_is_refused_naming_the_item(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_content_sids(spec)


def test_a_script_subtag_names_a_template_of_its_own() -> None:
    assert parse_content_sids(f"zgh-Tfng={SID}") == {"zgh-Tfng": SID}
