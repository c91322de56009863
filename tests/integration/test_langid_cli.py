"""The language step run as separate processes: same answers in every process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "salam bghit n3ref 3lach flousi ma wslouch",
    "la carte dyali tblokat",
    "Hola",
    "ok merci",
    "بغيت نعرف علاش",
    "Ich warte seit einer Woche auf mein Geld.",
    "Tom est là ?",
    "",
]


def run_detect(texts: list[str]) -> list[dict]:
    completed = subprocess.run(
        [sys.executable, "-m", "normalizer.langid.cli", "detect-language"],
        input="\n".join(texts) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in completed.stdout.splitlines()]


def test_two_processes_give_identical_answers() -> None:
    first = run_detect(TEXTS)
    second = run_detect(TEXTS)
    assert len(first) == len(TEXTS)
    assert first == second


def test_detect_language_with_an_argument_prints_one_object() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "normalizer.langid.cli", "detect-language", "ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert json.loads(completed.stdout)["tag"] == "zgh-Tfng"
