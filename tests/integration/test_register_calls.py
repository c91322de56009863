"""Calls to return in the monthly register and in a customer's access and erasure requests.

Calls to return are noted in the store as the phone line notes them, dated
in and around November 2026 (local time, Africa/Casablanca), on SQLite and
PostgreSQL; some are called back. The register's sums are exact, the XLSX
summary sheet is read back with openpyxl, the export zip with zipfile.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result
from openpyxl import load_workbook

from config.settings import get_settings
from gateway.cli import main
from gateway.ops.register import summary_text, write_xlsx
from gateway.store import Store

ZONE = "Africa/Casablanca"
HER = "+212661234567"
HIM = "+212700000001"


def note(
    store: Store, received_at: datetime, reason: str, caller: str = HER, *, done: bool = False
) -> str:
    call_sid = f"CA{uuid.uuid4().hex}"
    store.calls(first_seen_at=received_at).start(
        call_sid, account_sid=None, caller=caller, called="+212520020915"
    )
    item = store.call_backs.note(
        call_sid, caller=caller, language="fr", reason=reason, received_at=received_at
    )
    if done:
        store.call_backs.mark_done(item.id, "karim", "rappelé")
    return item.id


def november(store: Store) -> None:
    # 2026-10-31T23:30Z is 2026-11-01 00:30 in Casablanca: November.
    note(store, datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "missed", done=True)
    note(store, datetime(2026, 11, 10, 9, tzinfo=UTC), "missed")
    note(store, datetime(2026, 11, 14, 21, tzinfo=UTC), "out_of_hours_no_message", done=True)
    note(store, datetime(2026, 11, 20, 9, tzinfo=UTC), "empty_message", HIM)
    # December (local): not November's.
    note(store, datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "missed", done=True)


def test_the_register_counts_calls_to_return_by_reason_and_those_called_back(
    store: Store,
) -> None:
    november(store)

    register = store.register(ZONE).month("2026-11")

    assert register.calls_to_return == {
        "empty_message": (1, 0),
        "missed": (2, 1),
        "out_of_hours_no_message": (1, 1),
    }
    assert register.rows == ()
    assert summary_text(register).endswith(
        "calls to return: 4 (empty_message 1, missed 2, out_of_hours_no_message 1), 2 called back"
    )
    assert store.register(ZONE).month("2026-12").calls_to_return == {"missed": (1, 1)}


def test_the_summary_sheet_lists_calls_to_return_apart(store: Store, tmp_path: Path) -> None:
    november(store)
    out = tmp_path / "register.xlsx"

    write_xlsx(store.register(ZONE).month("2026-11"), out)

    sheet = load_workbook(out)["summary"]
    lines = [line[:3] for line in sheet.iter_rows(values_only=True) if any(line)]
    start = lines.index(("calls to return", "count", "called back"))
    assert lines[start + 1 :] == [
        ("empty_message", 1, 0),
        ("missed", 2, 1),
        ("out_of_hours_no_message", 1, 1),
        ("total", 4, 2),
    ]


def _cli(store: Store, data_dir: Path, *args: str) -> Result:
    env = {"INTAKE_DATA_DIR": str(data_dir)}
    if store.engine.dialect.name == "postgresql":
        env["INTAKE_DATABASE_URL"] = store.engine.url.render_as_string(hide_password=False)
    get_settings.cache_clear()  # the process's settings are read once: read this test's
    try:
        return CliRunner().invoke(main, list(args), env=env)
    finally:
        get_settings.cache_clear()


def test_export_holds_the_calls_to_return_and_erase_forgets_the_number_not_the_count(
    store: Store, data_dir: Path, tmp_path: Path
) -> None:
    november(store)
    out = tmp_path / "export.zip"

    exported = _cli(store, data_dir, "personal-data", "export", "--phone", HER, "--out", str(out))
    erased = _cli(store, data_dir, "personal-data", "erase", "--phone", HER, "--yes")

    assert (exported.exit_code, erased.exit_code) == (0, 0), exported.output + erased.output
    with zipfile.ZipFile(out) as archive:
        held = json.loads(archive.read("call_backs.json"))
        assert "call_backs.json" in archive.read("README.txt").decode()
    assert len(held) == 4 and {item["caller"] for item in held} == {HER}
    assert {item["outcome"] for item in held} == {"rappelé", None}
    remaining = store.call_backs.listing() + store.call_backs.listing(done=True)
    assert sorted(str(item.caller) for item in remaining) == sorted([HIM] + ["None"] * 4)
    assert all(item.outcome is None for item in remaining)
    # The register still counts them: it names nobody.
    assert sum(n for n, _d in store.register(ZONE).month("2026-11").calls_to_return.values()) == 4
