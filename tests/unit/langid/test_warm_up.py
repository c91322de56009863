"""Warming the detector up in the background loads what the first complaint would wait for."""

from __future__ import annotations

from normalizer.langid import backends
from normalizer.langid.detector import detect
from normalizer.language import warm_up_in_background


def test_background_warm_up_loads_both_lingua_detectors_and_answers_stay_the_same() -> None:
    before = detect("bonjour je voudrais savoir pourquoi mon virement tarde")

    thread = warm_up_in_background()
    thread.join(timeout=120)

    assert not thread.is_alive()
    assert thread.daemon  # never keeps a stopping process alive
    assert backends._lingua.cache_info().currsize == 2  # low-accuracy and full models
    assert detect("bonjour je voudrais savoir pourquoi mon virement tarde") == before
