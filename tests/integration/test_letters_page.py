"""The mailroom pages in a real headless browser (Debian chromium via Playwright).

Upload: ``intake run`` serves the page with its OCR workers; a staff member
logs in, drops two pages, and sees the reference, the language (named, not
a tag), the thumbnail and the first lines of OCR text.

Acknowledgements to post: ``intake web`` serves the list of letters the
acknowledger queued; the PDF is checked with poppler's ``pdftotext``, and
"posted" must take the letter off the list, close its row and put
``ack.sent`` on RabbitMQ's events queue.

The Arabic pages are right-to-left; screenshots go to tests/artifacts/.
"""

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.lib.services import Services, build_services
from gateway.store.acks import AckRecord
from normalizer.contract import Channel, ComplaintMessage, Customer
from tests.peers import scans
from tests.peers.acks import ack_events, ack_row, other_complaint
from tests.peers.browser import screenshot
from tests.peers.processes import IntakeProcesses, env_for, free_port
from tests.peers.staff import log_in as staff_log_in
from tests.peers.staff import serve_with_staff

PASSWORD = "courrier-2025-casa"
OCR_WAIT_MS = 120_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SENDER = Customer(
    name="Mohamed El Amrani",
    postal_address="12 rue des Orangers, appartement 4\nHay Riad\n10100 Rabat",
)
LETTER_TEXT = "Monsieur, je conteste les frais prélevés sur mon transfert du 2 novembre."


@pytest.fixture
def gateway_url(settings: Settings, intake_processes: IntakeProcesses) -> Iterator[str]:
    port = free_port()
    env = env_for(settings, http_port=port, max_request_bytes=60 * 1024 * 1024)
    yield serve_with_staff(intake_processes, env, port, ("amina", PASSWORD))


def start_web_with_staff(processes: IntakeProcesses, settings: Settings) -> str:
    """``intake web`` alone (no workers: the test queues its letters itself); its base URL."""
    port = free_port()
    env = env_for(settings, http_port=port)
    return serve_with_staff(processes, env, port, ("amina", PASSWORD), command="web")


@pytest.fixture
def broker_services(amqp_settings: Settings) -> Iterator[Services]:
    """Services on RabbitMQ, where the ``ack.sent`` event of a posted letter is looked for."""
    built = build_services(amqp_settings)
    try:
        yield built
    finally:
        built.close()


def queued_letter(
    services: Services, received_ago: timedelta = timedelta(0)
) -> tuple[ComplaintMessage, AckRecord]:
    """A letter complaint and its acknowledgement letter, queued for the mailroom."""
    complaint = other_complaint(
        services, Channel.LETTER, LETTER_TEXT, SENDER, received_ago=received_ago
    )
    record = Acknowledger(services).handle(complaint)
    assert record.status == "queued"
    return complaint, record


def pdf_text(data: bytes) -> str:
    done = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
    return done.stdout.decode("utf-8")


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
    assert card.locator(".language").inner_text().endswith(": français")
    assert card.locator(".language").get_attribute("data-tag") == "fr"
    assert card.locator("progress").evaluate_all("bars => bars.map(b => b.value)") == [100, 100]
    card.locator("img").wait_for()
    screenshot(page, "letters-upload-fr")


def test_the_thumbnail_shown_for_a_letter_is_a_png_of_its_first_page(
    page,
    gateway_url: str,
    letter_pages: list[str],
) -> None:
    log_in(page, gateway_url)
    page.set_input_files("#files", letter_pages[:1])
    page.click("#send")
    image = page.locator(".letter img").first
    image.wait_for(timeout=OCR_WAIT_MS)
    answer = page.request.get(gateway_url + str(image.get_attribute("src")))

    assert answer.status == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.body().startswith(PNG_SIGNATURE)
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0


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
    assert card.locator(".language").get_attribute("data-tag") in ("ar", "ary-Arab")
    assert (
        card.locator(".language")
        .inner_text()
        .strip()
        .endswith(("العربية", "الدارجة (بحروف عربية)"))
    )
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


def test_a_queued_acknowledgement_letter_is_listed_printed_and_marked_posted(
    page,
    broker_services: Services,
    amqp_settings: Settings,
    intake_processes: IntakeProcesses,
) -> None:
    complaint, letter = queued_letter(broker_services)
    base = start_web_with_staff(intake_processes, amqp_settings)
    log_in(page, base, "/letters/acks")
    row = page.locator(f"tr[data-ack='{letter.id}']")
    assert row.locator(".reference").inner_text() == complaint.reference
    assert "Mohamed El Amrani" in row.locator(".addressee").inner_text()
    assert "10100 Rabat" in row.locator(".addressee").inner_text()

    pdf = page.request.get(base + str(row.locator("a.pdf").get_attribute("href")))
    everything = page.request.get(base + str(page.get_attribute("#print-all", "href")))
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    assert complaint.reference in pdf_text(pdf.body())
    assert complaint.reference in pdf_text(everything.body())

    row.locator("button.posted").click()
    page.wait_for_url("**/letters/acks?posted=*")
    assert page.locator(f"tr[data-ack='{letter.id}']").count() == 0
    assert complaint.reference in page.inner_text("#notice")
    assert page.locator("#no-acks").is_visible()
    assert ack_row(broker_services, complaint.id).status == "sent"  # type: ignore[union-attr]
    [event] = ack_events(broker_services, 1)
    assert event["type"] == "ma.cashplus.intake.ack.sent.v1"
    assert event["data"]["details"]["reference"] == complaint.reference
    assert event["data"]["details"]["method"] == "letter"
    assert event["data"]["evidence"]["content_type"] == "application/pdf"


def test_a_logged_in_post_without_the_csrf_token_does_not_mark_the_letter_posted(
    page, services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    complaint, letter = queued_letter(services)
    base = start_web_with_staff(intake_processes, settings)
    log_in(page, base, "/letters/acks")

    # The browser's session cookie goes along (as from a forged form on another
    # site); the page's token does not.
    refused = page.request.post(
        f"{base}/letters/acks/{letter.id}/posted",
        form={"next": "/letters/acks"},
        max_redirects=0,
    )

    assert refused.status == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert ack_row(services, complaint.id).status == "queued"  # type: ignore[union-attr]


def test_arabic_list_of_letters_to_post_is_right_to_left_and_flags_close_deadlines(
    page,
    services: Services,
    settings: Settings,
    intake_processes: IntakeProcesses,
) -> None:
    fresh, _ = queued_letter(services)
    late, _ = queued_letter(services, received_ago=timedelta(days=9))
    base = start_web_with_staff(intake_processes, settings)
    log_in(page, base, "/letters/acks?lang=ar")

    assert page.get_attribute("html", "dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.querySelector('#acks')).direction") == "rtl"
    assert page.inner_text("header strong").endswith("إشعارات الاستلام المطلوب إرسالها")
    references = page.locator("#acks .reference").all_inner_texts()
    assert references == [fresh.reference, late.reference]  # oldest first: queued order
    close = page.locator("tr.close")
    assert close.locator(".reference").inner_text() == late.reference
    assert close.locator(".deadline").inner_text() == "الأيام المتبقية: 1"
    screenshot(page, "letters-acks-ar")


def test_a_reception_date_typed_too_far_in_the_past_is_refused(
    page, settings: Settings, intake_processes: IntakeProcesses, letter_pages: list[str]
) -> None:
    base = start_web_with_staff(intake_processes, settings)
    log_in(page, base)
    token = page.get_attribute("#letter-form", "data-csrf")
    long_ago = (datetime.now(UTC) - timedelta(days=settings.max_backdate_days + 5)).date()

    answer = page.request.post(
        f"{base}/letters/upload",
        headers={"X-CSRF-Token": token},
        multipart={
            "files": {
                "name": "page1.png",
                "mimeType": "image/png",
                "buffer": Path(letter_pages[0]).read_bytes(),
            },
            "received_on": long_ago.isoformat(),
        },
    )

    assert answer.status == 422
    assert answer.json()["error"]["field"] == "received_on"
