"""Recorded prompts: the audio files Cash Plus records, played instead of the voice when present.

``prompts/<language>/<name>.mp3`` (``name`` one of ``texts.PROMPTS``), served
by the app at ``/twilio/prompts/<language>/<name>.mp3`` for Twilio's
``<Play>``. A sentence without its file is spoken by the text-to-speech
voice from ``ivr.json``, so a language can be recorded one file at a time.
``prompts/README.md`` is the recording script (``intake twilio-prompts
--markdown`` writes it; a test keeps it in step with ``ivr.json``).
"""

from __future__ import annotations

from pathlib import Path

from channels.twilio.texts import PROMPTS, IvrTable

PROMPT_DIR = Path(__file__).with_name("prompts")
PROMPT_PATH = "/twilio/prompts"
SUFFIX = ".mp3"


def prompt_file(table: IvrTable, tag: str, name: str, root: Path | None = None) -> Path | None:
    """The recorded file of sentence ``name`` in ``tag``, if Cash Plus has recorded it."""
    if tag not in table.languages or name not in PROMPTS:
        return None  # never a path built from anything but the table's own names
    path = (root or PROMPT_DIR) / tag / f"{name}{SUFFIX}"
    return path if path.is_file() else None


def prompt_path(tag: str, name: str) -> str:
    return f"{PROMPT_PATH}/{tag}/{name}{SUFFIX}"


def recording_status(table: IvrTable, root: Path | None = None) -> list[tuple[str, str, bool]]:
    """``(language, sentence, recorded?)`` for every sentence the line speaks."""
    return [
        (tag, name, prompt_file(table, tag, name, root) is not None)
        for tag in table.spoken_languages
        for name, _text in table.prompts(tag)
    ]


def recording_script(table: IvrTable) -> str:
    """The recording script in Markdown: every sentence to record, per language."""
    lines = [
        "# Recorded prompts of the phone line",
        "",
        "Generated from `channels/twilio/ivr.json` by `intake twilio-prompts --markdown`;",
        "do not edit by hand. Each sentence below is one file,",
        "`channels/twilio/prompts/<language>/<file>` (MP3, mono, 8 or 16 kHz is enough).",
        "A sentence with its file is played with `<Play>`; one without is read by the",
        "text-to-speech voice. The reference read back to the caller is always spoken",
        "character by character by the voice (it differs on every call).",
        "",
        "Languages marked **unreviewed** have texts no native speaker has checked yet:",
        "have them reviewed before recording, then set `reviewed` to true in `ivr.json`.",
    ]
    for tag in table.spoken_languages:
        texts = table.texts(tag)
        flag = "" if texts.reviewed else " (**unreviewed**)"
        lines += ["", f"## `{tag}`{flag}", ""]
        if texts.note:
            lines += [texts.note, ""]
        lines += ["| file | sentence |", "|---|---|"]
        for name, text in table.prompts(tag):
            cell = text.replace("|", "\\|")
            if name in texts.tifinagh:
                cell += f"<br>{texts.tifinagh[name]}"
            lines.append(f"| `{name}{SUFFIX}` | {cell} |")
    return "\n".join(lines) + "\n"
