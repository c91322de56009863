"""The language step: tag the complaint text for routing to an agent who reads it.

A language the customer chose explicitly (the IVR menu, a form field, an API
caller's ``language``) wins, with method ``declared``/``ivr``; otherwise the
detector in ``normalizer.langid`` decides from the text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from normalizer.contract import Language, SecondaryLanguage

# A language chosen by voice (the phone menu) names no script; the complaint is
# tagged the way its transcript is written: Darija transcripts are in Arabic script.
SPOKEN_TAGS: dict[str, str] = {"ary": "ary-Arab"}


def warm_up_in_background(then: Callable[[], None] | None = None) -> threading.Thread:
    """Load the detector's word lists and models beside a long-running process's start.

    For the services that tag complaints as they come (web, IMAP, the
    runners): the statistical models take most of a second to load, which
    would otherwise fall on the first complaint that needs them. The load
    runs in native code that leaves the interpreter free. ``then`` runs in
    the same thread once they are loaded (``gateway.lib.commands.freeze_heap``).
    """
    from normalizer.langid.detector import warm_up

    def load() -> None:
        warm_up()
        if then is not None:
            then()

    thread = threading.Thread(target=load, name="langid-warm-up", daemon=True)
    thread.start()
    return thread


def detect_text_language(text: str) -> Language:
    """Language of ``text``; never raises (``und`` when there is nothing to go on)."""
    from normalizer.langid import detect

    guess = detect(text)
    return Language(
        tag=guess.tag,
        confidence=round(guess.confidence, 4),
        method=guess.method,
        secondary=[
            SecondaryLanguage(tag=item.tag, confidence=round(item.confidence, 4))
            for item in guess.secondary
        ],
    )


def declared_language(tag: str, method: str = "declared") -> Language:
    return Language(tag=tag, confidence=1.0, method=method)


def written_tag(spoken: str) -> str:
    """The contract's tag for a language chosen by voice (the menu's ``ary``: ``ary-Arab``)."""
    return SPOKEN_TAGS.get(spoken, spoken)
