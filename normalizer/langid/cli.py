"""Command-line entry points of the language step.

``detect_language`` and ``langid_eval`` are click commands that the gateway
CLI registers as ``intake detect-language`` and ``intake langid-eval``; the
small group at the bottom runs them as ``python -m normalizer.langid.cli``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from normalizer.langid.detector import detect
from normalizer.langid.evaluate import compare, format_reports, read_samples


def _json_line(text: str) -> str:
    return json.dumps(detect(text).as_dict(), ensure_ascii=False)


@click.command("detect-language")
@click.argument("text", required=False)
def detect_language(text: str | None) -> None:
    """Print the language of TEXT as JSON; without TEXT, one JSON line per stdin line."""
    if text is not None:
        click.echo(_json_line(text))
        return
    for line in sys.stdin:
        click.echo(_json_line(line.rstrip("\r\n")))


@click.command("langid-eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object.")
def langid_eval(file: Path, as_json: bool) -> None:
    """Accuracy per label, macro accuracy, confusions and speed on FILE, next to langdetect."""
    samples = read_samples(file)
    if not samples:
        raise click.UsageError(f"{file}: no rows (expected header + label, source, text)")
    reports = compare(samples)
    if as_json:
        payload = {
            report.name: {
                "per_label": report.per_label,
                "macro": report.macro,
                "micro": report.micro,
                "microseconds_per_call": report.microseconds_per_call,
            }
            for report in reports
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"{file}: {len(samples)} rows")
    click.echo(format_reports(reports))
    ours, stock = reports
    speedup = stock.microseconds_per_call / max(ours.microseconds_per_call, 1e-9)
    click.echo(f"\nspeed: {speedup:.1f}x fewer microseconds per call than langdetect")


@click.group()
def main() -> None:
    """Language identification commands (standalone entry point)."""


main.add_command(detect_language)
main.add_command(langid_eval)

if __name__ == "__main__":
    main()
