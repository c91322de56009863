"""Letter intake rules that need no peer: the legal date, the dedup key, the hot folder clock."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from channels.letters.hotfolder import Stability, candidates
from channels.letters.intake import (
    LetterFile,
    LetterUpload,
    ScanRejectedDate,
    letter_key,
    received_at_for,
)

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def test_letter_received_today_starts_the_clock_now() -> None:
    assert received_at_for(None, "Africa/Casablanca", NOW) == NOW


def test_letter_received_earlier_starts_the_clock_on_that_day() -> None:
    received = received_at_for(date(2026, 3, 2), "Africa/Casablanca", NOW)
    assert received.date() == date(2026, 3, 2)


def test_reception_date_in_the_future_is_refused() -> None:
    with pytest.raises(ScanRejectedDate):
        received_at_for(date(2026, 3, 11), "Africa/Casablanca", NOW)


def test_same_scans_make_the_same_letter_key() -> None:
    first = LetterUpload(files=[LetterFile("a.png", b"1"), LetterFile("b.png", b"2")], source="api")
    again = LetterUpload(
        files=[LetterFile("x.png", b"1"), LetterFile("y.png", b"2")], source="page"
    )
    assert letter_key(first) == letter_key(again)


def test_page_order_changes_the_letter_key() -> None:
    ordered = LetterUpload(files=[LetterFile("a", b"1"), LetterFile("b", b"2")], source="api")
    swapped = LetterUpload(files=[LetterFile("b", b"2"), LetterFile("a", b"1")], source="api")
    assert letter_key(ordered) != letter_key(swapped)


def test_growing_file_is_not_ready_until_it_settles(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    stability = Stability(settle=2.0)
    assert not stability.ready(path, now=100.0)
    with path.open("ab") as stream:
        stream.write(b"more")
    assert not stability.ready(path, now=101.5)
    assert not stability.ready(path, now=103.0)
    assert stability.ready(path, now=103.6)


def test_scanner_work_files_are_not_candidates(tmp_path: Path) -> None:
    for name in ("letter.pdf", ".hidden.pdf", "letter2.pdf.part", "scan.tmp"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in candidates(tmp_path)] == ["letter.pdf"]
