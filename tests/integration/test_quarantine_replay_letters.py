"""Replaying refused letters: the same checks, the same record, the same OCR queue.

A refused letter keeps each file in quarantine with a manifest of the whole
letter. Once the cause is fixed (here: the page limit raised), replaying any
of its items records the whole letter, pages in order, dated from the day
the mailroom gave, with the sender typed at upload, a ``pending`` letter
for the OCR workers; every item of the letter is resolved. The letter's own
key (the scans' sha256) keeps it to one complaint however often it comes.
A file the scanner's hot folder refused leaves its ``rejected/`` for
``done/`` once replayed.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.letters.hotfolder import import_folder
from channels.letters.intake import LetterFile, LetterUpload, accept_letter
from channels.letters.replay import replay_letter
from config.settings import Settings, load_settings
from gateway.lib.services import Services, build_services
from gateway.ops.quarantine import replay
from gateway.store.quarantine import Quarantine, QuarantineItem
from gateway.store.tables import PENDING, ComplaintRow, LetterRow
from normalizer.ocr import ScanRejected
from tests.peers import scans
from tests.peers.complaints import count_rows
from tests.peers.processes import IntakeProcesses, env_for

LINES = ("Casablanca, le 3 mars", "Objet : transfert non recu", "Madame, Monsieur,")
SENDER = "Fatima Zahra El Idrissi"
ADDRESS = "12 rue Ibn Batouta, Casablanca"


def three_page_letter(received_on: date) -> LetterUpload:
    """Two files, three pages: over a two-page limit."""
    return LetterUpload(
        files=[
            LetterFile("page-1-2.pdf", scans.text_pdf(LINES, pages=2), "application/pdf"),
            LetterFile("page-3.pdf", scans.text_pdf(LINES[:1]), "application/pdf"),
        ],
        source="api",
        received_on=received_on,
        sender_name=SENDER,
        sender_address=ADDRESS,
        source_ids={"api_client": "scanner"},
    )


def refuse(settings: Settings, upload: LetterUpload, **limits: object) -> list[QuarantineItem]:
    """``upload`` refused by a gateway with stricter limits; its quarantined items."""
    strict = build_services(load_settings(data_dir=settings.data_dir, **limits))
    try:
        with pytest.raises(ScanRejected):
            accept_letter(strict, upload)
        return Quarantine(strict.store.engine).entries(channel="letter")
    finally:
        strict.close()


def days_ago(settings: Settings, days: int) -> date:
    return (datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)) - timedelta(days=days)).date()


def test_letter_refused_for_its_pages_is_recorded_whole_once_the_limit_is_raised(
    settings: Settings, services: Services
) -> None:
    received_on = days_ago(settings, 3)
    upload = three_page_letter(received_on)
    items = refuse(settings, upload, letter_max_pages=2)
    assert [item.reason_code for item in items] == ["too_many_pages"] * 2
    second_file = next(item for item in items if item.source_ids["file_name"] == "page-3.pdf")

    result = replay(services, second_file)

    assert result.ok, result.detail
    assert result.detail == "letter recorded, waiting for OCR"
    message = services.store.complaints.get_by_reference(result.reference or "")
    assert message is not None and message.channel.value == "letter"
    midday = datetime.combine(received_on, time(12), ZoneInfo(settings.timezone))
    assert message.received_at == midday.astimezone(UTC)
    assert message.customer.name == SENDER
    assert [attachment.name for attachment in message.attachments] == ["page-1-2.pdf", "page-3.pdf"]
    letter = services.store.letters.by_complaint(message.id)
    assert letter is not None and letter.status == PENDING and letter.pages == 3
    quarantine = Quarantine(services.store.engine)
    assert quarantine.entries(channel="letter") == []
    resolved = quarantine.entries(resolved=True, channel="letter")
    assert {item.complaint_id for item in resolved} == {message.id}


def test_letter_replayed_twice_is_one_complaint_and_one_ocr_job(
    settings: Settings, services: Services
) -> None:
    (first, second) = refuse(settings, three_page_letter(days_ago(settings, 1)), letter_max_pages=2)
    done = replay(services, first)
    assert done.ok, done.detail

    # The hook itself, on an item the first replay resolved: the same letter.
    again = replay_letter(services, second)

    assert again.ok and again.detail == "letter already recorded"
    assert again.complaint_id == done.complaint_id
    assert count_rows(services.store, ComplaintRow) == 1
    assert count_rows(services.store, LetterRow) == 1


def test_letter_uploaded_again_before_its_replay_stays_one_complaint(
    settings: Settings, services: Services
) -> None:
    upload = three_page_letter(days_ago(settings, 2))
    (item, _other) = refuse(settings, upload, letter_max_pages=2)
    uploaded = accept_letter(services, upload)  # the mailroom sent it again, limit now raised

    result = replay(services, item)

    assert result.ok and result.detail == "letter already recorded"
    assert result.complaint_id == uploaded.complaint_id
    assert count_rows(services.store, ComplaintRow) == 1
    assert Quarantine(services.store.engine).entries() == []


def test_file_still_refused_stays_in_quarantine_and_is_not_kept_twice(
    settings: Settings, services: Services
) -> None:
    upload = LetterUpload(files=[LetterFile("scan.pdf", scans.executable_bytes())], source="page")
    (item,) = refuse(settings, upload)
    assert item.reason_code == "unsupported_type"

    result = replay(services, item)

    assert not result.ok
    assert result.detail.startswith("unsupported_type:")
    assert "scan.pdf" in result.detail
    assert [open_item.id for open_item in Quarantine(services.store.engine).entries()] == [item.id]
    assert count_rows(services.store, ComplaintRow) == 0


def test_item_kept_without_a_manifest_is_replayed_as_a_one_file_letter(
    services: Services,
) -> None:
    item_id = services.store.complaints.quarantine(
        channel="letter",
        data=scans.text_pdf(LINES),
        content_type="application/pdf",
        reason_code="too_many_pages",
        reason="refusé par une limite relevée depuis",
        source_ids={"file_name": "courrier.pdf", "source": "hotfolder"},
    )
    item = Quarantine(services.store.engine).get(item_id)
    assert item is not None

    result = replay(services, item)

    assert result.ok, result.detail
    message = services.store.complaints.get_by_reference(result.reference or "")
    assert message is not None
    assert message.received_at == item.created_at
    assert [attachment.name for attachment in message.attachments] == ["courrier.pdf"]


def test_cli_replays_a_refused_letter_and_prints_its_reference(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    (item, _other) = refuse(settings, three_page_letter(days_ago(settings, 1)), letter_max_pages=2)

    done = intake_processes.run("quarantine", "reprocess", item.id[:8], env=env_for(settings))

    assert done.popen.returncode == 0, done.describe()
    item_id, reference, _complaint = done.stdout().strip().split("\t")
    assert item_id == item.id and reference.startswith("CP-")
    assert "letter recorded" in done.stderr()
    listing = intake_processes.run(
        "quarantine", "list", "--channel", "letter", env=env_for(settings)
    )
    assert listing.stdout().strip() == ""


def refused_in_hot_folder(settings: Settings, folder: Path, name: str, data: bytes) -> Path:
    """``data`` dropped in the hot folder of a gateway with a one-page limit; where it went."""
    (folder / name).write_bytes(data)
    strict = build_services(load_settings(data_dir=settings.data_dir, letter_max_pages=1))
    try:
        (outcome,) = import_folder(strict, folder)
    finally:
        strict.close()
    assert outcome.status == "rejected" and outcome.detail == "too_many_pages"
    (kept,) = [p for p in (folder / "rejected").iterdir() if p.read_bytes() == data]
    return kept


def test_hot_folder_scan_replayed_moves_from_rejected_to_done(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "scanner"
    (folder / "rejected").mkdir(parents=True)
    # An older refusal of the same name: the new one is kept under a stamped name.
    (folder / "rejected" / "courrier.pdf").write_bytes(scans.executable_bytes())
    data = scans.text_pdf(LINES, pages=2)
    kept = refused_in_hot_folder(settings, folder, "courrier.pdf", data)
    assert kept.name != "courrier.pdf"
    (item,) = Quarantine(services.store.engine).entries(channel="letter")

    result = replay(services, item)

    assert result.ok, result.detail
    done = folder / "done" / kept.name
    assert done.read_bytes() == data
    assert (folder / "done" / f"{kept.name}.reference.txt").read_text().strip() == result.reference
    assert not kept.exists()
    assert not kept.with_name(f"{kept.name}.reason.txt").exists()
    assert (folder / "rejected" / "courrier.pdf").exists()  # the other refusal stays


def test_hot_folder_scan_replayed_where_its_folder_is_gone_is_recorded_all_the_same(
    settings: Settings, services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    refused_in_hot_folder(settings, folder, "courrier.pdf", scans.text_pdf(LINES, pages=2))
    (item,) = Quarantine(services.store.engine).entries(channel="letter")
    shutil.rmtree(folder)  # another machine's folder, or gone

    with caplog.at_level(logging.WARNING, logger="intake.letters.replay"):
        result = replay(services, item)

    assert result.ok, result.detail
    assert [r.message for r in caplog.records if "not reachable" in r.message] != []
