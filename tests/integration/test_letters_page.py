"""The mailroom upload page in a real headless browser (Debian chromium via Playwright).

``intake run`` serves the page with its OCR workers; a staff member logs in,
drops two pages, and sees the reference, the language and the first lines
of OCR text. The Arabic page is right-to-left; screenshots go to
tests/artifacts/.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from tests.peers import scans
from tests.peers.browser import screenshot
from tests.peers.processes import IntakeProcesses, env_for, free_port
from tests.peers.staff import log_in as staff_log_in
from tests.peers.staff import serve_with_staff

PASSWORD = "courrier-2025-casa"
OCR_WAIT_MS = 120_000


@pytest.fixture
def gateway_url(settings: Settings, intake_processes: IntakeProcesses) -> Iterator[str]:
    port = free_port()
    env = env_for(settings, http_port=port, max_request_bytes=60 * 1024 * 1024)
    yield serve_with_staff(intake_processes, env, port, ("amina", PASSWORD))


@pytest.fixture
def letter_pages(tmp_path: Path) -> list[str]:
    first, second = tmp_path / "page1.png", tmp_path / "page2.jpg"
    first.write_bytes(scans.encode(scans.render_page(scans.FRENCH_LETTER, angle=1.5), "png"))
    second.write_bytes(
        scans.encode(scans.render_page(scans.FRENCH_LETTER_PAGE_2, angle=-1.0), "jpeg")
    )
    return [str(first), str(second)]


def log_in(page, base: str, path: str = "/letters/") -> None:
    staff_log_in(page, base, path, ("amina", PASSWORD))


def test_staff_uploads_two_pages_and_sees_reference_and_ocr_text(
    page,
    gateway_url: str,
    letter_pages: list[str],
) -> None:
    log_in(page, gateway_url)
    page.set_input_files("#files", letter_pages)
    page.fill("#sender_name", "Fatima Zahra")
    page.click("#send")
    card = page.locator(".letter").first
    card.locator(".reference").wait_for()
    assert card.locator(".reference").inner_text().split(":")[-1].strip().startswith("CP-")
    card.locator(".excerpt").wait_for(timeout=OCR_WAIT_MS)
    card.locator(".status-done").wait_for(timeout=OCR_WAIT_MS)
    assert "transfert" in card.locator(".excerpt").inner_text()
    assert card.locator(".language").inner_text().endswith("fr")
    assert card.locator("progress").evaluate_all("bars => bars.map(b => b.value)") == [100, 100]
    card.locator("img").wait_for()
    screenshot(page, "letters-upload-fr")


def test_arabic_page_renders_right_to_left(
    page,
    gateway_url: str,
    tmp_path: Path,
) -> None:
    log_in(page, gateway_url, "/letters/?lang=ar")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.get_attribute("html", "lang") == "ar"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    scan = tmp_path / "risala.png"
    scan.write_bytes(scans.encode(scans.render_page(scans.ARABIC_LETTER, arabic=True), "png"))
    page.set_input_files("#files", [str(scan)])
    page.click("#send")
    card = page.locator(".letter").first
    card.locator(".status-done").wait_for(timeout=OCR_WAIT_MS)
    assert "تحويل" in card.locator(".excerpt").inner_text()
    assert card.locator(".language").inner_text().strip().endswith(("ar", "ary-Arab"))
    screenshot(page, "letters-upload-ar")


def test_refused_file_shows_its_reason_in_arabic(
    page,
    gateway_url: str,
    tmp_path: Path,
) -> None:
    log_in(page, gateway_url, "/letters/?lang=ar")
    fake = tmp_path / "lettre.pdf"
    fake.write_bytes(scans.executable_bytes())
    page.set_input_files("#files", [str(fake)])
    page.click("#send")
    reason = page.locator(".letter .reason").first
    reason.wait_for()
    assert "نوع الملف مرفوض" in reason.inner_text()
