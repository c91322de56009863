"""Where each detector earns its place: accuracy and speed per part of the problem.

Usage: python bench/langid_bench.py FILE.tsv   (label, source, text; header line)

Prints, on the French/English/Spanish rows of FILE, stock langdetect (seed 0)
against lingua restricted to the seven languages the language step gives it
(full and low-accuracy mode), then the whole language step on every row.
The numbers in docs/langid.md come from this script and `langid-eval`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from normalizer.langid.backends import lingua_rank, warm_up
from normalizer.langid.evaluate import Sample, read_samples, stock_langdetect
from normalizer.langid.evaluate import ours as language_step


def timed(samples: list[Sample], tagger: Callable[[str], str]) -> tuple[float, float]:
    tagger(samples[0].text)
    start = time.perf_counter()
    correct = sum(tagger(sample.text) == sample.label for sample in samples)
    elapsed = time.perf_counter() - start
    return correct / len(samples), elapsed / len(samples) * 1e6


def lingua_top(low_accuracy: bool) -> Callable[[str], str]:
    def tag(text: str) -> str:
        ranked = lingua_rank(text, low_accuracy=low_accuracy)
        return ranked[0].code if ranked else "und"

    return tag


def main(path: str) -> None:
    samples = read_samples(Path(path))
    romance = [s for s in samples if s.label in ("fr", "en", "es")]
    short = [s for s in romance if len(s.text) < 60]
    warm_up()
    contenders: list[tuple[str, Callable[[str], str]]] = [
        ("langdetect (stock, seed 0)", stock_langdetect),
        ("lingua 7 languages, full", lingua_top(False)),
        ("lingua 7 languages, low accuracy", lingua_top(True)),
        ("language step (lists + lingua)", language_step),
    ]
    for title, rows in (("fr/en/es rows", romance), ("fr/en/es rows under 60 chars", short)):
        print(f"{title}: {len(rows)}")
        for name, tagger in contenders:
            accuracy, micros = timed(rows, tagger)
            print(f"  {name:<36} accuracy {accuracy:6.1%}   {micros:8.1f} us/call")
    accuracy, micros = timed(samples, language_step)
    print(f"all rows: {len(samples)}")
    print(f"  language step: micro accuracy {accuracy:.1%}, {micros:.1f} us/call")


if __name__ == "__main__":
    main(sys.argv[1])
