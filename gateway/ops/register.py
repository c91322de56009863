"""``intake register export``: the monthly complaints register as XLSX or CSV, and its summary.

The staff page ``/ops/register/`` (``gateway.ops.register_page``) shows the
same register as charts and downloads the same files (``export_bytes``).

``Store.register(zone).month("2026-12")`` (rows and sums) -> **write_xlsx**
(sheet ``register``: one row per complaint, ``COLUMNS`` in order; sheet
``summary``: counts by channel x product x origin, the delays to
acknowledge and to answer (median, 90th percentile, how many past the
deadline), then the inputs that were not complaints, then the calls to
return and how many were called back) or **write_csv** (the
rows only) -> a file for Cash Plus's reporting to Bank Al-Maghrib.
``--summary`` prints the summary table.

Times are written in the local time zone (Africa/Casablanca), ISO 8601 with
their offset in the CSV; in the XLSX as local date-times (Excel has no zone).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from gateway.lib.commands import CommandError, ExitCode, open_services
from gateway.store.register import COLUMNS, GroupSums, MonthRegister

SUMMARY_COLUMNS = (
    "channel",
    "product",
    "origin",
    "complaints",
    "acknowledged",
    "ack_days_median",
    "ack_days_p90",
    "ack_past_deadline",
    "answered",
    "answer_days_median",
    "answer_days_p90",
    "answer_past_deadline",
)
_TIMES = frozenset({"received_at", "ack_due_at", "acknowledged_at", "answer_due_at", "answered_at"})


def summary_rows(register: MonthRegister) -> list[tuple[Any, ...]]:
    """The summary table's lines (the last one, channel ``*``, is the month's total)."""
    return [_summary_line(group) for group in register.groups()]


def _summary_line(group: GroupSums) -> tuple[Any, ...]:
    return (
        group.channel,
        group.product,
        group.origin,
        group.complaints,
        group.acknowledged,
        group.ack.median,
        group.ack.p90,
        group.ack.late,
        group.answered,
        group.answer.median,
        group.answer.p90,
        group.answer.late,
    )


def _local(value: Any, zone: ZoneInfo, *, naive: bool) -> Any:
    if not isinstance(value, datetime):
        return value
    moment = value.astimezone(zone)
    return moment.replace(tzinfo=None) if naive else moment.isoformat()


def register_lines(register: MonthRegister, *, naive: bool) -> Iterator[tuple[Any, ...]]:
    zone = ZoneInfo(register.zone)
    for row in register.rows:
        yield tuple(
            _local(value, zone, naive=naive) if name in _TIMES else value
            for name, value in zip(COLUMNS, row.values(), strict=True)
        )


# A text cell starting with one of these is a formula to a spreadsheet: the register
# holds text partners and customers wrote (``product`` from the API), never formulas.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: Any) -> Any:
    """``value`` for a CSV cell a spreadsheet opens as text, not as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(register: MonthRegister, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for line in register_lines(register, naive=False):
            writer.writerow(["" if value is None else inert(value) for value in line])


def write_xlsx(register: MonthRegister, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    rows = book.active
    assert rows is not None  # a new workbook has its first sheet
    rows.title = "register"
    rows.append(list(COLUMNS))
    for line in register_lines(register, naive=True):
        rows.append(list(line))
    for cell in rows[1]:
        cell.font = Font(bold=True)
    for column in ("F", "G", "H", "J", "K"):
        for cell in rows[column][1:]:
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
    rows.freeze_panes = "A2"
    summary = book.create_sheet("summary")
    summary.append([f"Register {register.month} ({register.zone})"])
    summary.append(list(SUMMARY_COLUMNS))
    for line in summary_rows(register):
        summary.append(list(line))
    summary.append([])
    summary.append(["not complaints", "count"])
    for kind, count in register.non_complaints.items():
        summary.append([kind, count])
    summary.append(["total", sum(register.non_complaints.values())])
    summary.append([])
    summary.append(["calls to return", "count", "called back"])
    for reason, (calls, called_back) in register.calls_to_return.items():
        summary.append([reason, calls, called_back])
    summary.append(["total", *call_back_totals(register)])
    for cell in summary[2]:
        cell.font = Font(bold=True)
    for sheet in (rows, summary):  # text that looks like a formula stays text
        for line in sheet.iter_rows():
            for cell in line:
                if cell.data_type == "f":
                    cell.data_type = "s"
    book.save(path)


def summary_text(register: MonthRegister) -> str:
    """The summary as an aligned plain-text table, for a terminal."""
    lines = [SUMMARY_COLUMNS, *(_printable(line) for line in summary_rows(register))]
    widths = [max(len(str(line[index])) for line in lines) for index in range(len(lines[0]))]
    text = [
        "  ".join(str(value).ljust(width) for value, width in zip(line, widths, strict=True))
        for line in lines
    ]
    total = sum(register.non_complaints.values())
    kinds = ", ".join(f"{kind} {count}" for kind, count in register.non_complaints.items())
    text.append("")
    text.append(f"not complaints: {total}" + (f" ({kinds})" if kinds else ""))
    calls, called_back = call_back_totals(register)
    reasons = ", ".join(f"{reason} {n}" for reason, (n, _d) in register.calls_to_return.items())
    listed = f" ({reasons})" if reasons else ""
    text.append(f"calls to return: {calls}{listed}, {called_back} called back")
    return "\n".join(line.rstrip() for line in text)


def call_back_totals(register: MonthRegister) -> tuple[int, int]:
    """The month's calls to return and how many of them were called back."""
    sums = register.calls_to_return.values()
    return sum(calls for calls, _done in sums), sum(done for _calls, done in sums)


def _printable(line: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(
        "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        for value in line
    )


WRITERS = {".xlsx": write_xlsx, ".csv": write_csv}
MEDIA_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv; charset=utf-8",
}


def export_bytes(register: MonthRegister, suffix: str) -> bytes:
    """The file ``WRITERS[suffix]`` writes, as bytes (the staff page's download)."""
    with tempfile.TemporaryDirectory(prefix="intake-register-") as folder:
        path = Path(folder) / f"register{suffix}"
        WRITERS[suffix](register, path)
        return path.read_bytes()


@click.group("register")
def register_group() -> None:
    """The monthly complaints register (Bank Al-Maghrib circular 10/W/16)."""


@register_group.command("export")
@click.option("--month", required=True, help="YYYY-MM, in the local time zone.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write: .xlsx (rows and summary) or .csv (rows).",
)
@click.option("--summary", "show_summary", is_flag=True, help="Print the summary table.")
def register_export(month: str, out: Path | None, show_summary: bool) -> None:
    """One row per complaint received in MONTH, with its delays; the sums on a second sheet."""
    if out is None and not show_summary:
        raise CommandError("give --out FILE (.xlsx or .csv), --summary, or both", ExitCode.USAGE)
    writer = WRITERS.get(out.suffix.lower()) if out is not None else None
    if out is not None and writer is None:
        raise CommandError(f"{out}: the file must end in .xlsx or .csv", ExitCode.USAGE)
    with open_services() as services:
        try:
            register = services.store.register(services.settings.timezone).month(month)
        except ValueError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from None
    if out is not None and writer is not None:
        writer(register, out)
        click.echo(f"{len(register.rows)} complaints of {month} written to {out}", err=True)
    if show_summary:
        click.echo(summary_text(register))


COMMANDS = (register_group,)
