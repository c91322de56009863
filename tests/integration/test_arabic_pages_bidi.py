"""Arabic pages in Chromium: phone numbers, references and dates are drawn left to right.

In a right-to-left page the bidi algorithm draws digit groups separated by
spaces from right to left ("06 12 34 56 78" shown as "78 56 34 12 06").
Each test reads back where the browser drew each group
(``tests.peers.bidi``); one test draws the same example without isolation
and sees it reversed, so the measure is known to tell the two apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import Settings
from tests.integration.test_ops_page import gateway_url, log_in
from tests.peers.bidi import add_plain_paragraph, group_positions, reads_left_to_right
from tests.peers.browser import screenshot
from tests.peers.processes import IntakeProcesses
from tests.peers.webform import WebService, start_web

pytestmark = pytest.mark.integration

__all__ = ["gateway_url"]  # the operator page's gateway, with staff and quarantined inputs

PHONE_EXAMPLE = "06 12 34 56 78"
AR_TEXT = "السلام عليكم، لم تصل الحوالة التي أرسلتها يوم 3 نونبر إلى أختي في أكادير."


@pytest.fixture
def web(intake_processes: IntakeProcesses, amqp_settings: Settings) -> WebService:
    return start_web(intake_processes, amqp_settings)


@pytest.fixture
def arabic_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="ar-MA", viewport={"width": 1000, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_phone_example_reads_left_to_right_and_plain_text_would_not(
    arabic_page: Any, web: WebService
) -> None:
    page = arabic_page
    page.goto(web.url + "/ar/")
    add_plain_paragraph(page, "unisolated", f"مثال: {PHONE_EXAMPLE}")

    assert page.get_attribute("html", "dir") == "rtl"
    hint = group_positions(page, "#f-phone-hint", PHONE_EXAMPLE)
    assert hint[0] < hint[-1], f"the phone example is drawn backwards: {hint}"
    assert reads_left_to_right(page, "#f-phone-hint", PHONE_EXAMPLE)
    plain = group_positions(page, "#unisolated", PHONE_EXAMPLE)
    assert plain[0] > plain[-1], "without isolation the example should be reversed"


def test_the_phone_example_in_the_servers_error_reads_left_to_right(
    browser: Any, web: WebService
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="ar-MA")
    try:
        page = context.new_page()
        page.goto(web.url + "/ar/")
        page.fill("#f-phone", "12")
        page.fill("#f-text", AR_TEXT)
        page.click("button[type=submit]")
        page.locator("#f-phone-error").wait_for()
        screenshot(page, "webform-ar-phone-error")
        assert reads_left_to_right(page, "#f-phone-error", PHONE_EXAMPLE)
        assert reads_left_to_right(page, "#error-summary", PHONE_EXAMPLE)
    finally:
        context.close()


def test_the_reference_on_the_arabic_confirmation_reads_left_to_right(
    arabic_page: Any, web: WebService
) -> None:
    page = arabic_page
    page.goto(web.url + "/ar/")
    page.fill("#f-phone", "06 61 23 45 67")
    page.fill("#f-text", AR_TEXT)
    page.click("button[type=submit]")
    page.locator("#reference").wait_for()
    reference = page.locator("#reference").inner_text().strip()
    screenshot(page, "webform-ar-confirmation-bidi")

    assert reference.startswith("CP-")
    positions = group_positions(page, "#reference", reference)
    assert positions[0] < positions[1] < positions[2], positions
    received = page.locator("#received-at").inner_text()
    time = received.split()[-1]  # "6 دجنبر 2026 على الساعة 14:08"
    assert reads_left_to_right(page, "#received-at", time)


def test_dates_on_the_arabic_operator_page_read_left_to_right(page: Any, gateway_url: str) -> None:
    log_in(page, gateway_url)
    page.goto(gateway_url + "/ops/?lang=ar")
    assert page.get_attribute("html", "dir") == "rtl"
    when = page.locator("tr.quarantined td").first.inner_text().strip()
    screenshot(page, "ops-ar-bidi")

    positions = group_positions(page, "tr.quarantined td", when)
    assert len(positions) == 2 and positions[0] < positions[1], (when, positions)
