"""The language tools as a component of the host: ``intake detect-language``, ``langid-eval``."""

from __future__ import annotations

from gateway.lib.component import Component
from normalizer.langid.cli import detect_language, langid_eval

ADAPTER = Component(name="langid", commands=(detect_language, langid_eval))
