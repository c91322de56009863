"""``intake normalize`` and ``intake import mbox|maildir`` as real subprocesses.

Each test runs ``intake`` with ``INTAKE_DATA_DIR`` in its temp folder and
reads the resulting store the way an operator would.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, select

from config.settings import Settings
from gateway.store import Store, open_store
from gateway.store.db import reading
from gateway.store.tables import (
    ComplaintRow,
    EventRow,
    EvidenceRow,
    IntakeRow,
    OutboxRow,
    QuarantineRow,
)
from normalizer.contract import ComplaintMessage, IntakeEvent
from tests.peers.complaints import count_rows
from tests.peers.processes import INTAKE, intake_env

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
EVENTS = {"autoreply_outlook.eml", "autoreply_subject_only.eml", "bounce_report.eml"}
COMPLAINTS = sorted(path.name for path in MAIL.glob("*.eml") if path.name not in EVENTS)
MALFORMED = b"just some words, no header at all\n"
TABLES = (ComplaintRow, OutboxRow, EventRow, EvidenceRow, QuarantineRow)


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def run(settings: Settings, *args: str) -> Ran:
    """``intake ARGS`` with the test's data folder; its exit code and output."""
    completed = subprocess.run(
        [INTAKE, *args],
        env=intake_env(data_dir=settings.data_dir),
        cwd=settings.data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Ran(completed.returncode, completed.stdout, completed.stderr)


def table_counts(settings: Settings) -> dict[str, int]:
    store = open_store(settings)
    try:
        return {model.__tablename__: count_rows(store, model) for model in TABLES}
    finally:
        store.close()


def with_store(settings: Settings) -> Store:
    return open_store(settings)


# -- intake normalize ----------------------------------------------------------------
@pytest.mark.parametrize("name", COMPLAINTS)
def test_normalize_prints_a_valid_complaint_message(settings: Settings, name: str) -> None:
    process = run(settings, "normalize", str(MAIL / name))
    assert process.code == 0, process.stderr
    message = ComplaintMessage.model_validate_json(process.stdout)
    digest = hashlib.sha256((MAIL / name).read_bytes()).hexdigest()
    assert message.evidence.stored_at == f"blob:sha256:{digest}"
    assert message.channel.value == "email"


def test_normalize_stores_nothing(settings: Settings) -> None:
    process = run(settings, "normalize", str(MAIL / "fr_signature_quote.eml"))
    assert process.code == 0, process.stderr
    assert list(settings.data_dir.iterdir()) == []
    assert process.stderr.startswith("note: not stored;")


def test_normalize_of_an_auto_reply_prints_the_event_it_would_be(settings: Settings) -> None:
    process = run(settings, "normalize", str(MAIL / "autoreply_outlook.eml"))
    event = IntakeEvent.model_validate_json(process.stdout)
    assert process.code == 0
    assert event.kind == "email.autoreply"


@pytest.mark.parametrize("content", [MALFORMED, b"", b"\n\n\n"])
def test_normalize_of_malformed_input_exits_65_with_one_line(
    settings: Settings, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(content)
    process = run(settings, "normalize", str(bad))
    lines = process.stderr.strip().splitlines()
    assert process.code == 65
    assert len(lines) == 1 and "rejected (malformed)" in lines[0]
    assert process.stdout == ""


def test_normalize_of_a_missing_file_exits_66_with_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    process = run(settings, "normalize", str(tmp_path / "nothing.eml"))
    assert process.code == 66
    assert len(process.stderr.strip().splitlines()) == 1


# -- intake import -----------------------------------------------------------------------
BACKLOG = {
    # name: (mbox From-line date, Cash Plus local time)
    "fr_signature_quote.eml": "Mon Jun  3 11:02:07 2024",
    "ary_latin_script.eml": "Tue Jun  4 08:00:00 2024",
    "es_reply.eml": "Wed Jun  5 17:30:00 2024",
    "autoreply_outlook.eml": "Wed Jun  5 17:31:00 2024",
}


def mbox_bytes(items: list[tuple[str, bytes]]) -> bytes:
    """An mbox as a mail server writes it: LF line endings, ``>From`` quoting."""
    out = []
    for from_date, raw in items:
        out.append(f"From MAILER-DAEMON {from_date}\n".encode())
        for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
            out.append((b">" + line if line.startswith(b"From ") else line) + b"\n")
    return b"".join(out)


@pytest.fixture
def mbox_file(tmp_path: Path) -> Path:
    items = [(date, (MAIL / name).read_bytes()) for name, date in BACKLOG.items()]
    items.append(("Thu Jun  6 09:00:00 2024", MALFORMED))
    path = tmp_path / "inbox.mbox"
    path.write_bytes(mbox_bytes(items))
    return path


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    for folder in ("cur", "new", "tmp"):
        (root / folder).mkdir(parents=True)
    for index, name in enumerate(BACKLOG):
        target = root / ("cur" if index % 2 else "new")
        suffix = ":2,S" if index % 2 else ""
        (target / f"{1717405200 + index}.M{index}P1.mail.cashplus.ma{suffix}").write_bytes(
            (MAIL / name).read_bytes()
        )
    (root / "new" / "1717500000.M9P1.mail.cashplus.ma").write_bytes(MALFORMED)
    return root


def test_import_mbox_reports_what_it_created(settings: Settings, mbox_file: Path) -> None:
    process = run(settings, "import", "mbox", str(mbox_file))
    assert process.code == 0, process.stderr
    assert process.stdout.strip() == (
        "5 message(s): complaints 3 new, 0 repeated; auto-replies 1 new, 0 repeated; "
        "not complaints (to sort) 0; rejected 1 (0 already in quarantine)"
    )
    assert table_counts(settings) == {
        "complaints": 3,
        "outbox": 4,
        "events": 1,
        "evidence": 4,
        "quarantine": 1,
    }


def test_import_mbox_twice_creates_nothing_new(settings: Settings, mbox_file: Path) -> None:
    run(settings, "import", "mbox", str(mbox_file))
    before = table_counts(settings)
    again = run(settings, "import", "mbox", str(mbox_file))
    assert again.code == 0, again.stderr
    assert again.stdout.strip() == (
        "5 message(s): complaints 0 new, 3 repeated; auto-replies 0 new, 1 repeated; "
        "not complaints (to sort) 0; rejected 1 (1 already in quarantine)"
    )
    assert table_counts(settings) == before


def the_row(settings: Settings, query: Select[Any]) -> Any:
    """The one row ``query`` finds in the store of ``settings``."""
    store = with_store(settings)
    try:
        with reading(store.engine) as session:
            return session.scalars(query).one()
    finally:
        store.close()


def test_import_mbox_takes_the_received_time_from_the_from_line(
    settings: Settings, mbox_file: Path
) -> None:
    run(settings, "import", "mbox", str(mbox_file))
    row = the_row(
        settings, select(ComplaintRow).where(ComplaintRow.message.contains("fr-1@fixtures.example"))
    )
    # 11:02:07 in Casablanca (UTC+1 in June 2024); the Date header says 10:15 +0100.
    assert row.received_at == datetime(2024, 6, 3, 10, 2, 7, tzinfo=UTC)


def test_import_mbox_keeps_the_received_time_of_a_mail_it_quarantines(
    settings: Settings, mbox_file: Path
) -> None:
    run(settings, "import", "mbox", str(mbox_file))
    row = the_row(settings, select(QuarantineRow))
    # Its From line says 09:00 in Casablanca (UTC+1 in June 2024): a replay is dated so.
    kept = datetime.fromisoformat(row.source_ids["received_at"])
    assert kept == datetime(2024, 6, 6, 8, 0, tzinfo=UTC)


def test_import_shows_a_progress_bar_on_stderr(settings: Settings, mbox_file: Path) -> None:
    process = run(settings, "import", "mbox", str(mbox_file))
    assert "5/5" in process.stderr


def test_import_maildir_twice_creates_nothing_new(settings: Settings, maildir: Path) -> None:
    first = run(settings, "import", "maildir", str(maildir))
    after_first = table_counts(settings)
    second = run(settings, "import", "maildir", str(maildir))
    assert first.code == second.code == 0, second.stderr
    assert "complaints 3 new, 0 repeated" in first.stdout
    assert "complaints 0 new, 3 repeated" in second.stdout
    assert after_first["complaints"] == 3 and after_first["quarantine"] == 1
    assert table_counts(settings) == after_first


def test_the_same_mail_in_two_exports_is_one_complaint(
    settings: Settings, maildir: Path, mbox_file: Path
) -> None:
    run(settings, "import", "maildir", str(maildir))
    process = run(settings, "import", "mbox", str(mbox_file))
    assert "complaints 0 new, 3 repeated" in process.stdout


def test_import_of_mail_recorded_before_captures_existed_creates_nothing_new(
    settings: Settings, maildir: Path
) -> None:
    # Recorded the old way (``ingest_mail``: the complaint's dedup key, no capture).
    from channels.email.intake import MailArrival, ingest_mail
    from gateway.lib.services import build_services

    services = build_services(settings)
    try:
        for name in BACKLOG:
            ingest_mail(services, MailArrival((MAIL / name).read_bytes(), datetime.now(UTC)))
    finally:
        services.close()
    before = table_counts(settings)

    process = run(settings, "import", "maildir", str(maildir))

    assert process.code == 0, process.stderr
    assert "complaints 0 new, 3 repeated" in process.stdout
    after = table_counts(settings)
    assert (after["complaints"], after["outbox"]) == (before["complaints"], before["outbox"])


def test_import_captures_each_mail_at_its_received_time(settings: Settings, maildir: Path) -> None:
    run(settings, "import", "maildir", str(maildir))
    store = with_store(settings)
    try:
        with reading(store.engine) as session:
            captures = session.scalars(select(IntakeRow)).all()
            complaints = {row.id: row.received_at for row in session.scalars(select(ComplaintRow))}
    finally:
        store.close()
    assert {row.outcome for row in captures} == {"complaint", "event", "quarantined"}
    assert {row.id: row.received_at for row in captures if row.id in complaints} == complaints


def test_import_of_a_folder_that_is_not_a_maildir_exits_65(
    settings: Settings, tmp_path: Path
) -> None:
    process = run(settings, "import", "maildir", str(tmp_path))
    assert process.code == 65
    assert len(process.stderr.strip().splitlines()) == 1
