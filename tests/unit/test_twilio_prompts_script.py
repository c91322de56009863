"""The recording script and the review flags of the phone line's texts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from channels.twilio.audio import PROMPT_DIR, recording_script, recording_status
from channels.twilio.cli import twilio_prompts
from channels.twilio.texts import PROMPTS, ivr_table


def test_the_readme_of_the_prompts_folder_is_the_current_recording_script() -> None:
    readme = (PROMPT_DIR / "README.md").read_text(encoding="utf-8")
    assert readme == recording_script(ivr_table()), (
        "regenerate: intake twilio-prompts --markdown > channels/twilio/prompts/README.md"
    )


def test_the_script_lists_every_spoken_sentence_of_every_language() -> None:
    table = ivr_table()
    script = recording_script(table)
    for tag in table.spoken_languages:
        for name, text in table.prompts(tag):
            assert f"| `{name}.mp3` | {text.replace('|', chr(92) + '|')}" in script, (tag, name)


def test_tamazight_is_written_in_tifinagh_and_latin_and_flagged_unreviewed() -> None:
    table = ivr_table()
    zgh = table.texts("zgh")
    assert not zgh.reviewed
    assert set(zgh.tifinagh) == {name for name, _text in table.prompts("zgh")}
    assert all("\u2d30" <= ch <= "\u2d7f" for ch in zgh.tifinagh["goodbye"] if ch.isalpha())
    assert "## `zgh` (**unreviewed**)" in recording_script(table)


def test_darija_and_arabic_are_separate_languages_with_their_own_texts() -> None:
    table = ivr_table()
    assert table.texts("ary").record_prompt != table.texts("ar").record_prompt
    assert table.voice_for("ary").language == "arb"  # no Darija voice: recordings replace it


def test_no_file_means_every_sentence_is_spoken(tmp_path: Path) -> None:
    statuses = recording_status(ivr_table(), tmp_path)
    assert statuses
    assert not any(recorded for _tag, _name, recorded in statuses)
    assert {name for _tag, name, _ in statuses} <= set(PROMPTS)


def test_cli_lists_unreviewed_languages() -> None:
    result = CliRunner().invoke(twilio_prompts, [])
    assert result.exit_code == 0
    assert "zgh  goodbye           voice     UNREVIEWED" in result.output
    assert "fr   goodbye           voice     reviewed" in result.output
