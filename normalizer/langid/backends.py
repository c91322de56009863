"""The two statistical detectors behind the word lists, wrapped to be safe to call.

* lingua (lingua-language-detector), restricted to a handful of Latin-script
  languages, decides French, English and Spanish: it is right on short
  sentences where langdetect is not, and fast once its models are loaded.
* langdetect stays the backbone for every other language it knows (German,
  Turkish, Russian...). Its detector is random unless seeded and keeps state
  in the Detector object, so each call gets a fresh seeded detector under a
  lock: the same text gives the same answer in every run and every process.

Both are loaded on first use, never at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from langdetect import DetectorFactory
from langdetect.detector_factory import init_factory
from langdetect.lang_detect_exception import LangDetectException

# Set before any detection, in every process that imports this module.
DetectorFactory.seed = 0

# lingua decides among these; anything but fr/en/es as its answer means "some
# other Latin-script language", which langdetect then names.
LINGUA_CODES = ("fr", "en", "es", "de", "it", "pt", "nl")

_LANGDETECT_LOCK = threading.Lock()
_LINGUA_LOCK = threading.Lock()


@dataclass(frozen=True)
class Ranked:
    """A backend's answer: language code and its probability."""

    code: str
    probability: float


@cache
def _lingua(low_accuracy: bool) -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in LINGUA_CODES]
    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    # Preloading costs under a second and ~250 MB once (lingua shares the
    # models between both modes); lazy loading would pay it inside a request.
    return builder.with_preloaded_language_models().build()


def lingua_rank(text: str, low_accuracy: bool = False) -> list[Ranked]:
    """lingua's confidence for each of ``LINGUA_CODES``, best first.

    ``low_accuracy`` uses trigrams only: about four times faster, a few points
    less accurate on very short text.
    """
    with _LINGUA_LOCK:
        detector = _lingua(low_accuracy)
    values = detector.compute_language_confidence_values(text)
    return [
        Ranked(value.language.iso_code_639_1.name.lower(), float(value.value)) for value in values
    ]


def warm_up() -> None:
    """Load lingua's models and langdetect's profiles now rather than on a first request."""
    lingua_rank("warm up")
    lingua_rank("warm up", low_accuracy=True)
    langdetect_rank("warm up")


def langdetect_rank(text: str) -> list[Ranked]:
    """langdetect's languages for ``text``, best first; empty when it finds no features."""
    with _LANGDETECT_LOCK:
        init_factory()
        from langdetect.detector_factory import _factory

        detector = _factory.create()
        detector.append(text)
        try:
            found = detector.get_probabilities()
        except LangDetectException:
            return []
    return [Ranked(_bcp47(item.lang), float(item.prob)) for item in found]


def _bcp47(code: str) -> str:
    # langdetect writes zh-cn / zh-tw; BCP 47 writes the region in capitals.
    language, _, region = code.partition("-")
    return f"{language}-{region.upper()}" if region else language
