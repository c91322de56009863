"""The benchmark suite: every benchmark under bench/ against its yardstick, then the document.

    scripts/bench                       # all of them (about 10 minutes here)
    scripts/bench --only smtp,imap      # some; the others keep their last figures
    scripts/bench --quick               # smaller runs, to check that everything works
    scripts/bench --soak 30             # also the 30-minute soak (bench/soak.py)
    scripts/bench --soak 30 --production  # the soak on PostgreSQL + RabbitMQ instead
    scripts/bench --render              # rewrite docs/benchmarks.md from the stored figures

Each benchmark script runs as its own process with ``--json`` (its yardstick
is measured inside the same run of the same script) and prints its figures;
they are kept in ``docs/benchmarks.json`` with the date, the command and the
load average, and ``docs/benchmarks.md`` is rendered from them and the
templates in ``bench/templates/`` (the prose) by ``bench/report.py`` (the
tables). Shared evaluation data (scans, the language-identification set)
are read where they are, given as arguments, never copied here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from bench.report import RENDERERS  # noqa: E402

DOCS = ROOT / "docs"
RESULTS = DOCS / "benchmarks.json"
DOCUMENT = DOCS / "benchmarks.md"
TEMPLATES = Path(__file__).parent / "templates"
SHARED = ROOT.parent / "shared" / "data"
PYTHON = ".venv/bin/python"  # how the document spells the interpreter
SOAKS = ("soak", "soak_production")  # bench/soak.py records these itself, after the others


@dataclass(frozen=True)
class Benchmark:
    """One script and the arguments it runs with (``None``: it cannot run, and why)."""

    name: str
    argv: Callable[[argparse.Namespace], list[str] | str]


def _script(name: str, full: list[str], quick: list[str]) -> Callable[..., list[str]]:
    return lambda args: [PYTHON, f"bench/{name}.py", *(quick if args.quick else full)]


def _ocr(args: argparse.Namespace) -> list[str] | str:
    if not args.scans.is_dir():
        return f"no scans folder at {args.scans} (--scans DIR)"
    return [PYTHON, "bench/ocr_bench.py", _shown(args.scans)]


def _langid(args: argparse.Namespace) -> list[str] | str:
    if not args.langid.is_file():
        return f"no evaluation set at {args.langid} (--langid FILE)"
    return [".venv/bin/intake", "langid-eval", _shown(args.langid)]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("relay", _script("relay_bench", [], ["--messages", "1000", "--posts", "300"])),
    Benchmark("smtp", _script("smtp_bench", [], ["--messages", "300"])),
    Benchmark("imap", _script("imap_bench", [], ["--messages", "200", "--repeats", "1"])),
    Benchmark(
        "twilio",
        _script("twilio_bench", [], ["--seconds", "3", "--rate-seconds", "5", "--pool", "5000"]),
    ),
    Benchmark("webform", _script("webform_bench", [], ["--posts", "60", "--acks", "30"])),
    Benchmark("ocr", _ocr),
    Benchmark("langid", _langid),
    Benchmark("hostile", _script("hostile_bench", [], [])),
)


def _shown(path: Path) -> str:
    """A path as the document shows it: relative to the repository when it can be."""
    return os.path.relpath(path.resolve(), ROOT)


# -- running ----------------------------------------------------------------------
def run_one(benchmark: Benchmark, args: argparse.Namespace) -> dict[str, Any]:
    argv = benchmark.argv(args)
    if isinstance(argv, str):
        return {"date": machine.today(), "error": f"not run: {argv}"}
    command = " ".join(argv)
    real = [sys.executable if part == PYTHON else part for part in argv]
    real[0] = str(ROOT / real[0]) if real[0].startswith(".venv/") else real[0]
    print(f"\n== {benchmark.name}: {command}", file=sys.stderr, flush=True)
    load = round(os.getloadavg()[0], 2)
    start = time.monotonic()
    done = subprocess.run(
        [*real, "--json"], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False
    )
    seconds = round(time.monotonic() - start, 1)
    base = {"date": machine.today(), "command": command, "load": load, "seconds": seconds}
    if done.returncode != 0:
        return {**base, "error": f"exit {done.returncode}"}
    try:
        return {**base, "figures": json.loads(done.stdout)}
    except json.JSONDecodeError:
        return {**base, "error": f"no JSON on stdout: {done.stdout[-300:]!r}"}


def load_results() -> dict[str, Any]:
    if RESULTS.exists():
        return dict(json.loads(RESULTS.read_text(encoding="utf-8")))
    return {"machine": {}, "date": None, "results": {}}


def store_result(name: str, result: dict[str, Any]) -> None:
    """Keep one benchmark's figures (a failed run keeps the previous figures beside its error)."""
    stored = load_results()
    if name in SOAKS:  # a soak gives its figures flat, with its samples (drawn in the PNG)
        outside = ("date", "command", "load", "seconds")
        figures = {k: v for k, v in result.items() if k not in ("samples", *outside)}
        entry = {k: result[k] for k in outside if k in result} | {"figures": figures}
    elif "figures" in result:
        entry = result
    else:
        entry = {**stored["results"].get(name, {}), "failed": result}
    stored["results"][name] = entry
    RESULTS.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def store_machine() -> None:
    stored = load_results()
    stored["machine"] = machine.describe()
    stored["date"] = machine.today()
    RESULTS.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# -- the document --------------------------------------------------------------------
def _when(entry: dict[str, Any], document_date: str | None) -> str:
    if "figures" not in entry:
        return f"Not measured yet: {entry.get('failed', {}).get('error', 'never run')}."
    when = f"Run of {entry['date']}"
    if "load" in entry:
        when += f" (load average {entry['load']} at its start, {entry['seconds']:.0f} s)"
    if entry.get("failed"):
        failed = entry["failed"]
        when += f"; the run of {failed['date']} failed ({failed.get('error')}), figures kept"
    elif document_date and entry["date"] != document_date:
        when += f"; not re-run on {document_date}"
    return when + "."


def render_section(name: str, entry: dict[str, Any], document_date: str | None) -> tuple[str, Any]:
    template = Template((TEMPLATES / f"{name}.md").read_text(encoding="utf-8"))
    values = {"command": entry.get("command", ""), "when": _when(entry, document_date)}
    summary = None
    if "figures" in entry:
        extra, summary = RENDERERS[name](entry["figures"])
        values |= extra
    else:
        values |= {"table": "| not measured | |", "pages": "", "extra": ""}
    return template.safe_substitute(values).rstrip() + "\n", summary


def write_document() -> None:
    stored = load_results()
    results, date = stored["results"], stored.get("date")
    order = [benchmark.name for benchmark in BENCHMARKS] + list(SOAKS)
    sections, summaries = [], []
    for name in order:
        if name not in results:
            continue
        section, summary = render_section(name, results[name], date)
        sections.append(section)
        if summary:
            summaries.append("| " + " | ".join(summary) + " |")
    facts = stored.get("machine") or machine.describe()
    header = Template((TEMPLATES / "header.md").read_text(encoding="utf-8")).safe_substitute(
        {**{k: str(v) for k, v in facts.items()}, "date": date or machine.today()},
        load=" / ".join(str(value) for value in facts.get("load_average", [])),
        summary="\n".join(summaries),
    )
    DOCUMENT.write_text("\n".join([header.rstrip() + "\n", *sections]), encoding="utf-8")
    print(f"wrote {_shown(DOCUMENT)}", file=sys.stderr)


# -- the command ------------------------------------------------------------------------
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=Path, default=SHARED / "scans", help="OCR scans folder")
    parser.add_argument(
        "--langid", type=Path, default=SHARED / "langid-dev.tsv", help="language-id TSV"
    )
    parser.add_argument("--only", help="comma-separated: " + ",".join(RENDERERS))
    parser.add_argument("--quick", action="store_true", help="smaller runs, a smoke test")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="also run the soak")
    parser.add_argument(
        "--production",
        action="store_true",
        help="with --soak: the soak on this machine's PostgreSQL and RabbitMQ",
    )
    parser.add_argument("--render", action="store_true", help="only rewrite the document")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        write_document()
        return 0
    wanted = set(args.only.split(",")) if args.only else None
    store_machine()
    failures = 0
    for benchmark in BENCHMARKS:
        if wanted is None or benchmark.name in wanted:
            result = run_one(benchmark, args)
            failures += "error" in result
            store_result(benchmark.name, result)
            write_document()  # after each one: an interrupted suite keeps what it measured
    if args.soak:
        soak = [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", f"{args.soak:g}"]
        soak += ["--production"] if args.production else []
        code = subprocess.run(soak, cwd=ROOT, check=False).returncode
        failures += code != 0
    write_document()
    return 1 if failures else 0
