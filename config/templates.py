"""Approved WhatsApp templates of the acknowledgements, parsed strictly at start-up.

``INTAKE_TWILIO_WHATSAPP_ACK_TEMPLATES`` names one approved template of
Twilio's Content API per language: ``fr=HX...,ar=HX...`` (a ``ContentSid``
is ``HX`` and 32 hex digits; a language is a BCP 47 primary tag, with a
script subtag where it matters, e.g. ``zgh-Tfng``). Anything else fails at
start-up naming the variable (``ValueError`` here; the settings turn it into
``ConfigError``).
"""

from __future__ import annotations

import re

_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_TEMPLATE_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{4})?$")


def parse_content_sids(spec: str) -> dict[str, str]:
    """``fr=HX...,ar=HX...`` -> ``{"fr": "HX...", "ar": "HX..."}`` (Twilio Content API SIDs)."""
    found: dict[str, str] = {}
    for item in (piece.strip() for piece in spec.split(",")):
        if not item:
            continue
        language, _, content_sid = (part.strip() for part in item.partition("="))
        if not _TEMPLATE_LANGUAGE.match(language) or not _CONTENT_SID.match(content_sid):
            raise ValueError(f"{item!r}: expected LANGUAGE=HX followed by 32 hex digits")
        if language in found:
            raise ValueError(f"{language}: two templates for one language")
        found[language] = content_sid
    return found
