"""``intake normalize`` on a scanned letter: OCR runs, the complaint is printed, nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from config.settings import Settings
from normalizer.contract import ComplaintMessage
from tests.peers import scans

INTAKE = str(Path(sys.executable).with_name("intake"))


def _normalize(
    settings: Settings, path: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTAKE_DATA_DIR": str(settings.data_dir), **extra_env}
    return subprocess.run(
        [INTAKE, "normalize", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_normalize_of_a_scanned_letter_prints_its_ocr_text_as_a_letter(
    settings: Settings, tmp_path: Path
) -> None:
    page = tmp_path / "lettre.png"
    page.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER), "png"))
    ran = _normalize(settings, page)
    assert ran.returncode == 0, ran.stderr
    message = ComplaintMessage.model_validate(json.loads(ran.stdout))
    assert message.channel.value == "letter"
    assert message.language.tag == "fr"
    assert "réclamation" in message.body.lower() or "virement" in message.body.lower()
    assert "not stored" in ran.stderr
    assert not (settings.data_dir / "intake.db").exists()
    # As the worker would publish it: a clean page needs no review.
    assert message.needs_review is False
    assert message.subject is None
    (attachment,) = message.attachments
    assert attachment.ocr_confidence is not None and attachment.ocr_confidence > 0.6
    assert attachment.ocr_text and "Casablanca" in attachment.ocr_text


def test_normalize_of_a_scan_under_the_review_confidence_prints_it_flagged(
    settings: Settings, tmp_path: Path
) -> None:
    page = tmp_path / "lettre.png"
    page.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER), "png"))
    # No page reaches 100 %: the worker would flag it, so the preview must too.
    ran = _normalize(settings, page, INTAKE_OCR_REVIEW_CONFIDENCE="100")
    assert ran.returncode == 0, ran.stderr
    message = ComplaintMessage.model_validate(json.loads(ran.stdout))
    assert message.needs_review is True
    assert "page(s) 1" in (message.subject or "")
    assert message.attachments[0].ocr_confidence is not None


def test_normalize_of_a_file_that_lies_about_being_a_scan_exits_65(
    settings: Settings, tmp_path: Path
) -> None:
    fake = tmp_path / "scan.pdf"
    fake.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER), "png"))
    ran = _normalize(settings, fake)
    assert ran.returncode == 65
    assert len(ran.stderr.strip().splitlines()) == 1


def test_normalize_reads_a_scan_piped_on_stdin(settings: Settings) -> None:
    page = scans.encode(scans.render_page(scans.FRENCH_LETTER), "png")
    ran = subprocess.run(
        [INTAKE, "normalize", "-"],
        env={**os.environ, "INTAKE_DATA_DIR": str(settings.data_dir)},
        input=page,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr.decode()
    message = ComplaintMessage.model_validate(json.loads(ran.stdout))
    assert message.channel.value == "letter"
    assert message.language.tag == "fr"
    assert message.attachments[0].content_type == "image/png"
