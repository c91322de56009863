"""Measure the language step on a labelled TSV file, next to stock langdetect.

The file has a header and three tab-separated columns: ``label``, ``source``,
``text``; labels write ``_`` where BCP 47 writes ``-`` (``ary_Arab``). Both
detectors run on the same rows in the same process, so accuracy and
microseconds per call compare like with like. Used by ``intake langid-eval``
and by the regression test on tests/data/langid-sample.tsv.
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langdetect import DetectorFactory
from langdetect import detect as langdetect_detect

from normalizer.langid.detector import detect, warm_up


@dataclass(frozen=True)
class Sample:
    """One labelled row."""

    label: str
    source: str
    text: str


@dataclass
class Report:
    """Accuracy per label, macro accuracy, confusions and speed of one detector."""

    name: str
    per_label: dict[str, float]
    macro: float
    micro: float
    microseconds_per_call: float
    confusion: dict[str, Counter[str]] = field(default_factory=dict)


def read_samples(path: Path) -> list[Sample]:
    """Rows of a label/source/text TSV (header skipped, no quoting, ``_`` -> ``-``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [
        Sample(label=row[0].strip().replace("_", "-"), source=row[1], text=row[2])
        for row in rows[1:]
        if len(row) >= 3
    ]


def stock_langdetect(text: str) -> str:
    """Stock ``langdetect.detect`` (seed 0) as a tag; its exceptions count as ``und``."""
    DetectorFactory.seed = 0
    try:
        return str(langdetect_detect(text))
    except Exception:
        return "und"


def ours(text: str) -> str:
    """This package's answer, tag only."""
    return detect(text).tag


def measure(name: str, samples: list[Sample], tagger: Callable[[str], str]) -> Report:
    """Run ``tagger`` over ``samples`` once and score it (models loaded before timing)."""
    # Loading models and word lists is a once-per-process cost, kept out of
    # the per-call figure for both detectors alike.
    warm_up()
    for sample in samples[:1]:
        tagger(sample.text)
    answers: list[str] = []
    start = time.perf_counter()
    for sample in samples:
        answers.append(tagger(sample.text))
    elapsed = time.perf_counter() - start
    return _score(name, samples, answers, elapsed)


def _score(name: str, samples: list[Sample], answers: list[str], elapsed: float) -> Report:
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for sample, answer in zip(samples, answers, strict=True):
        confusion[sample.label][answer] += 1
    per_label = {
        label: counts[label] / sum(counts.values()) for label, counts in sorted(confusion.items())
    }
    correct = sum(counts[label] for label, counts in confusion.items())
    return Report(
        name=name,
        per_label=per_label,
        macro=sum(per_label.values()) / len(per_label) if per_label else 0.0,
        micro=correct / len(samples) if samples else 0.0,
        microseconds_per_call=elapsed / len(samples) * 1e6 if samples else 0.0,
        confusion=dict(confusion),
    )


def compare(samples: list[Sample]) -> tuple[Report, Report]:
    """This package and stock langdetect on the same samples, in this process."""
    return measure("langid", samples, ours), measure("langdetect", samples, stock_langdetect)


def format_reports(reports: Iterable[Report], show_confusion: str = "langid") -> str:
    """Plain-text table: per-label accuracy side by side, then one confusion table."""
    reports = list(reports)
    labels = sorted({label for report in reports for label in report.per_label})
    header = f"{'label':<10}" + "".join(f"{report.name:>12}" for report in reports)
    lines = [header]
    for label in labels:
        cells = "".join(f"{report.per_label.get(label, 0.0):>12.1%}" for report in reports)
        lines.append(f"{label:<10}{cells}")
    lines.append(f"{'macro':<10}" + "".join(f"{r.macro:>12.1%}" for r in reports))
    lines.append(f"{'micro':<10}" + "".join(f"{r.micro:>12.1%}" for r in reports))
    lines.append(f"{'us/call':<10}" + "".join(f"{r.microseconds_per_call:>12.1f}" for r in reports))
    for report in reports:
        if report.name == show_confusion:
            lines.extend(["", f"confusion ({report.name}): true label -> answers"])
            lines.extend(_confusion_lines(report))
    return "\n".join(lines)


def _confusion_lines(report: Report) -> list[str]:
    lines = []
    for label, counts in sorted(report.confusion.items()):
        answers = ", ".join(f"{tag}:{count}" for tag, count in counts.most_common())
        lines.append(f"  {label:<10} {answers}")
    return lines
