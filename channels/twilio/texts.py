"""What the phone line says and writes, per language: the table in ``ivr.json``.

The greeting, the language menu, the recording prompt, the reference
read-back and the SMS/WhatsApp replies are data, one entry per language, so
that changing a sentence, a voice or the order of the menu is an edit of
``ivr.json``, not of code. The table is checked when it is loaded: every
language on the menu can be spoken, every reply has its ``{reference}``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from normalizer.contract import LanguageTag

TABLE = Path(__file__).with_name("ivr.json")
SPOKEN = (
    "menu_option",
    "invalid_choice",
    "record_prompt",
    "nothing_heard",
    "reference_intro",
    "reference_repeat",
    "goodbye",
    "connecting",
    "hold",
    "no_agent",
    "closed",
)
# Every sentence the line may speak, in the order a caller hears them: the recording
# script of ``prompts/README.md`` and the names of the audio files (``<name>.mp3``).
PROMPTS = ("consent", *SPOKEN)
Digit = Annotated[str, StringConstraints(pattern=r"^[0-9*]$")]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Voice(_Data):
    voice: str = Field(description="Twilio <Say> voice, e.g. Polly.Lea")
    language: str = Field(description="Twilio <Say> language, e.g. fr-FR")


class LanguageTexts(_Data):
    voice: str | None = None  # key of ``voices``; None: a written-only language
    # False until a native speaker has checked the texts (listed by ``intake twilio
    # prompts`` and in ``prompts/README.md``).
    reviewed: bool = True
    twilio_transcription: bool = False  # Twilio's own transcription (English only)
    note: str | None = None
    consent: str | None = None
    menu_option: str | None = None
    invalid_choice: str | None = None
    record_prompt: str | None = None
    nothing_heard: str | None = None
    reference_intro: str | None = None
    reference_repeat: str | None = None
    goodbye: str | None = None
    connecting: str | None = None  # in hours, before the caller is put through
    hold: str | None = None  # played while the caller waits in a queue
    no_agent: str | None = None  # nobody answered: the caller leaves a message instead
    closed: str | None = None  # out of hours: the caller leaves a message
    # Spoken to the agent (in French) before the call is bridged: the caller's language.
    agent_whisper: str | None = None
    sms_reply: str
    sms_empty: str
    # The spoken sentences in a second script (Tamazight: Tifinagh), for the review
    # and the recording; the voice reads the main text.
    tifinagh: dict[str, str] = Field(default_factory=dict)

    def spoken(self, key: str) -> str:
        value = getattr(self, key)
        if not value:
            raise KeyError(f"no spoken text {key!r}")
        return str(value)


class MenuEntry(_Data):
    digit: Digit
    language: LanguageTag


class RecordSettings(_Data):
    max_length: int = Field(ge=10, le=3600)
    timeout: int = Field(ge=1, le=60)
    finish_on_key: str = Field(pattern=r"^[0-9#*]+$")


class IvrTable(_Data):
    voices: dict[str, Voice]
    greeting: list[str] = Field(min_length=1)
    menu: list[MenuEntry] = Field(min_length=1)
    default_digit: Digit
    menu_attempts: int = Field(ge=1, le=5)
    menu_timeout: int = Field(ge=1, le=30)
    record: RecordSettings
    languages: dict[str, LanguageTexts]
    reply_languages: dict[str, str]
    reply_default: str

    @model_validator(mode="after")
    def _consistent(self) -> IvrTable:
        digits = [entry.digit for entry in self.menu]
        if len(set(digits)) != len(digits):
            raise ValueError("menu: a digit is used twice")
        if self.default_digit not in digits:
            raise ValueError("default_digit is not on the menu")
        for tag in {entry.language for entry in self.menu} | set(self.greeting):
            texts = self.languages.get(tag)
            if texts is None or texts.voice not in self.voices:
                raise ValueError(f"{tag}: a spoken language needs texts and a known voice")
            missing = [key for key in (*SPOKEN, "agent_whisper") if not getattr(texts, key)]
            if missing:
                raise ValueError(f"{tag}: missing spoken texts {missing}")
            unknown = sorted(set(texts.tifinagh) - set(PROMPTS))
            if unknown:
                raise ValueError(f"{tag}: tifinagh texts for unknown sentences {unknown}")
        for tag in self.greeting:
            if not self.languages[tag].consent:
                raise ValueError(f"{tag}: the greeting needs its consent notice")
        for target in [*self.reply_languages.values(), self.reply_default]:
            if target not in self.languages:
                raise ValueError(f"reply language {target!r} has no texts")
        for tag, texts in self.languages.items():
            if "{reference}" not in texts.sms_reply:
                raise ValueError(f"{tag}: sms_reply must contain {{reference}}")
        return self

    # -- look-ups -----------------------------------------------------------
    def choice(self, digit: str | None) -> MenuEntry | None:
        return next((entry for entry in self.menu if entry.digit == digit), None)

    @property
    def default_choice(self) -> MenuEntry:
        choice = self.choice(self.default_digit)
        assert choice is not None  # checked at load
        return choice

    def texts(self, tag: str) -> LanguageTexts:
        return self.languages[tag]

    @property
    def spoken_languages(self) -> list[str]:
        """The greeting's languages, then the menu's, each once: the languages the line speaks."""
        tags = [*self.greeting, *(entry.language for entry in self.menu)]
        return list(dict.fromkeys(tags))

    def prompts(self, tag: str) -> list[tuple[str, str]]:
        """``(name, text)`` of every sentence spoken in ``tag`` (the recording script)."""
        texts = self.languages[tag]
        names = PROMPTS if tag in self.greeting else SPOKEN  # the consent is the greeting's
        return [(name, str(getattr(texts, name))) for name in names if getattr(texts, name)]

    def unreviewed(self) -> list[str]:
        """Languages whose texts no native speaker has checked yet."""
        return [tag for tag, texts in self.languages.items() if not texts.reviewed]

    def voice_for(self, tag: str) -> Voice:
        voice = self.languages[tag].voice
        return self.voices[voice or self.reply_default]

    def reply_texts(self, detected_tag: str) -> LanguageTexts:
        """Texts for a written reply to a message detected as ``detected_tag``."""
        key = self.reply_languages.get(detected_tag)
        if key is None:
            # Region or script variants (fr-MA, ar-Arab) answer like their language.
            key = self.reply_languages.get(re.split(r"-", detected_tag)[0], self.reply_default)
        return self.languages[key]


@lru_cache(maxsize=1)
def ivr_table() -> IvrTable:
    return IvrTable.model_validate_json(TABLE.read_text(encoding="utf-8"))


def reference_groups(reference: str) -> list[str]:
    """``CP-7K4M-9QXT`` -> ``["CP", "7K4M", "9QXT"]``: read a group at a time, a pause between."""
    return [group for group in reference.split("-") if group]
