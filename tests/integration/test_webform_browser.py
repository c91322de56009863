"""The public form in a real browser (Debian chromium via Playwright) against ``intake web``.

A customer fills it in and submits it, in French and in Arabic, sees the
reference, and the complaint is then found on RabbitMQ with ``channel:
webform`` and the language of its text. Errors come back next to the fields
and in a summary, with what was typed kept. Each language version is
screenshotted into ``tests/artifacts/`` for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from channels.webform.i18n import format_date
from config.settings import Settings
from gateway.acks.texts import languages_for
from normalizer.contract import ComplaintMessage
from tests.peers.bidi import group_positions
from tests.peers.browser import screenshot
from tests.peers.processes import IntakeProcesses
from tests.peers.webform import REFERENCE, WebService, queued_complaints, start_web

FR_TEXT = (
    "Bonjour, j'ai envoyé 1500 dirhams à ma sœur le 3 novembre depuis l'agence de Maârif "
    "et l'argent n'est toujours pas disponible. Merci de vérifier ce transfert."
)
AR_TEXT = (
    "السلام عليكم، قمت بتحويل مبلغ 1500 درهم إلى أختي يوم 3 نونبر من وكالة المعاريف "
    "ولم تتوصل به إلى حد الآن. المرجو التحقق من هذه العملية وإفادتي."
)
# Every stop of the keyboard, in order, after the skip link: the fields, then the button.
TAB_ORDER = (
    "f-name",
    "f-phone",
    "f-email",
    "f-product",
    "f-transaction_reference",
    "f-text",
    "f-attachments",
    "f-preferred_language",
    "f-preferred_contact",
    "privacy-link",  # the privacy notice, read before sending
    "send-button",
)
# Records every change of the upload progress box into sessionStorage, which
# outlives the confirmation page that the upload script writes over the form.
WATCH_PROGRESS = """() => {
  const box = document.getElementById('upload-progress');
  const bar = document.getElementById('upload-bar');
  const label = box.querySelector('.progress-value');
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem('progress') || '[]');
    seen.push({shown: !box.hidden, value: bar.value, label: label.textContent});
    sessionStorage.setItem('progress', JSON.stringify(seen));
  }).observe(box, {attributes: true, childList: true, characterData: true, subtree: true});
}"""
# A browser whose inline file checks let anything through (an outdated copy
# of the script, say): only the server's cap is left.
NO_INLINE_FILE_CHECKS = """document.addEventListener('DOMContentLoaded', () => {
  const data = document.getElementById('form-messages');
  if (!data) { return; }
  const config = JSON.parse(data.textContent);
  config.max_files = 1000;
  config.max_bytes = 1e12;
  data.textContent = JSON.stringify(config);
});"""


@pytest.fixture
def web(intake_processes: IntakeProcesses, amqp_settings: Settings) -> WebService:
    return start_web(intake_processes, amqp_settings)


@pytest.fixture
def no_script_page(browser: Any) -> Iterator[Any]:
    """A page with JavaScript off: the form must work as plain HTML."""
    context = browser.new_context(java_script_enabled=False, locale="fr-MA")
    try:
        yield context.new_page()
    finally:
        context.close()


def focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.className"))


def shown_date(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text()).strip()


def fill_contact_and_text(page: Any, text: str) -> None:
    page.fill("#f-name", "Fatima Zahra Alaoui")
    page.fill("#f-phone", "06 61 23 45 67")
    page.fill("#f-email", "fatima.alaoui@example.ma")
    page.select_option("#f-product", "money_transfer")
    page.fill("#f-transaction_reference", "TR-2026-0042")
    page.fill("#f-text", text)


def test_french_complaint_shows_its_reference_and_reaches_the_queue(
    page: Any,
    web: WebService,
    intake_processes: IntakeProcesses,
    amqp_settings: Settings,
) -> None:
    page.goto(web.url + "/")
    fill_contact_and_text(page, FR_TEXT)
    page.select_option("#f-preferred_contact", "email")
    page.click("button[type=submit]")

    reference = page.locator("#reference").inner_text().strip()
    screenshot(page, "webform-fr-confirmation")
    [complaint] = queued_complaints(intake_processes, web, amqp_settings, 1)
    zone = amqp_settings.timezone

    def in_french(field: str, **options: bool) -> str:
        return format_date(datetime.fromisoformat(complaint[field]), "fr", zone, **options)

    assert REFERENCE.fullmatch(reference)
    # The dates of the queued complaint, as a French reader writes them ("26 novembre 2026").
    assert shown_date(page, "#received-at") == in_french("received_at", with_time=True)
    assert shown_date(page, "#ack-due") == in_french("ack_due_at")
    assert shown_date(page, "#answer-due") == in_french("answer_due_at")
    assert " à " in shown_date(page, "#received-at")
    assert complaint["reference"] == reference
    assert complaint["channel"] == "webform"
    assert complaint["language"]["tag"] == "fr"
    assert complaint["product"] == "money_transfer"
    assert complaint["customer"]["phone"] == "+212661234567"
    assert complaint["customer"]["preferred_contact"] == "email"


def test_arabic_complaint_is_right_to_left_and_tagged_with_the_language_of_its_text(
    page: Any,
    web: WebService,
    intake_processes: IntakeProcesses,
    amqp_settings: Settings,
) -> None:
    page.goto(web.url + "/ar/")
    fill_contact_and_text(page, AR_TEXT)
    page.select_option("#f-preferred_contact", "whatsapp")
    page.click("button[type=submit]")

    page.locator("#reference").wait_for()
    screenshot(page, "webform-ar-confirmation")
    reference = page.locator("#reference").inner_text().strip()
    direction = page.evaluate("getComputedStyle(document.body).direction")
    [complaint] = queued_complaints(intake_processes, web, amqp_settings, 1)
    assert direction == "rtl"
    assert page.locator("h1").inner_text() == "توصلنا بشكايتكم"
    assert complaint["reference"] == reference
    assert complaint["language"]["tag"] == "ar"
    assert complaint["customer"].get("preferred_language") is None  # left to the text


def test_an_english_page_with_french_text_is_queued_and_acknowledged_in_french(
    page: Any,
    web: WebService,
    intake_processes: IntakeProcesses,
    amqp_settings: Settings,
) -> None:
    page.goto(web.url + "/en/")
    fill_contact_and_text(page, FR_TEXT)
    page.click("button[type=submit]")
    page.locator("#reference").wait_for()

    [complaint] = queued_complaints(intake_processes, web, amqp_settings, 1)
    assert complaint["language"]["tag"] == "fr"
    assert complaint["customer"].get("preferred_language") is None
    assert languages_for(ComplaintMessage.model_validate(complaint)) == ("fr",)


def test_an_answer_language_chosen_on_the_page_is_kept(
    page: Any,
    web: WebService,
    intake_processes: IntakeProcesses,
    amqp_settings: Settings,
) -> None:
    page.goto(web.url + "/")
    fill_contact_and_text(page, FR_TEXT)
    page.select_option("#f-preferred_language", "ar")
    page.click("button[type=submit]")
    page.locator("#reference").wait_for()

    [complaint] = queued_complaints(intake_processes, web, amqp_settings, 1)
    assert complaint["customer"]["preferred_language"] == "ar"


def test_errors_come_back_next_to_fields_and_in_a_summary_with_typed_values_kept(
    no_script_page: Any, web: WebService
) -> None:
    tab = no_script_page
    tab.goto(web.url + "/")
    tab.fill("#f-name", "Karim")
    tab.fill("#f-phone", "12")
    tab.fill("#f-text", "Ma carte a été avalée par le guichet.")
    tab.click("button[type=submit]")

    screenshot(tab, "webform-fr-errors")
    summary = tab.locator("#error-summary")
    phone_error = tab.locator("#f-phone-error")
    assert summary.is_visible()
    assert "numéro de téléphone n'est pas valide" in summary.inner_text()
    assert "numéro de téléphone n'est pas valide" in phone_error.inner_text()
    assert tab.get_attribute("#f-phone", "aria-invalid") == "true"
    assert "f-phone-error" in (tab.get_attribute("#f-phone", "aria-describedby") or "")
    assert tab.input_value("#f-name") == "Karim"
    assert tab.input_value("#f-text") == "Ma carte a été avalée par le guichet."
    assert tab.title().startswith("Erreur")


def test_a_corrected_form_goes_through_without_javascript(
    no_script_page: Any, web: WebService
) -> None:
    tab = no_script_page
    tab.goto(web.url + "/es/")
    tab.fill("#f-text", "Mi tarjeta fue retenida por el cajero automático ayer por la tarde.")
    tab.click("button[type=submit]")
    tab.locator("#f-phone-error").wait_for()
    tab.fill("#f-phone", "+34 612 34 56 78")
    tab.click("button[type=submit]")

    assert REFERENCE.fullmatch(tab.locator("#reference").inner_text().strip())
    assert tab.locator("html").get_attribute("lang") == "es"


def test_inline_validation_announces_a_missing_contact_before_any_round_trip(
    page: Any,
    web: WebService,
) -> None:
    page.goto(web.url + "/en/")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.method))
    page.fill("#f-text", "My card was blocked.")
    page.click("button[type=submit]")

    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    assert "Give a phone number or an e-mail address" in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert "POST" not in requests


def test_keyboard_alone_goes_from_the_skip_link_through_every_field_and_submits(
    page: Any, web: WebService
) -> None:
    typed = {
        "f-name": "Youssef",
        "f-phone": "0612345678",
        "f-email": "youssef@example.ma",
        "f-transaction_reference": "TR-77",
        "f-text": "Le paiement de ma facture d'électricité a été débité deux fois.",
    }
    page.goto(web.url + "/")
    page.keyboard.press("Tab")
    assert focused(page) == "skip-link"
    page.keyboard.press("Enter")
    assert focused(page) == "main"
    for stop in TAB_ORDER:
        page.keyboard.press("Tab")
        assert focused(page) == stop
        if stop in typed:
            page.keyboard.type(typed[stop])
        elif stop in ("f-product", "f-preferred_contact"):
            page.keyboard.press("ArrowDown")  # the first choice of the list
    page.keyboard.press("Space")

    assert REFERENCE.fullmatch(page.locator("#reference").inner_text().strip())
    assert page.locator("#received-at").inner_text().strip()


def test_the_keyboard_reaches_the_language_switch_before_the_form(
    page: Any, web: WebService
) -> None:
    page.goto(web.url + "/")
    stops = []
    for _ in range(6):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.getAttribute('lang') || ''"))
    assert stops == ["", "fr", "ar", "en", "es", ""]
    assert focused(page) == "f-name"


def test_an_attachment_uploads_with_progress_and_is_kept_with_the_complaint(
    page: Any,
    web: WebService,
    intake_processes: IntakeProcesses,
    amqp_settings: Settings,
    tmp_path: Path,
) -> None:
    from PIL import Image

    receipt = tmp_path / "recu.png"
    Image.new("RGB", (400, 200), "white").save(receipt)
    page.goto(web.url + "/")
    fill_contact_and_text(page, FR_TEXT)
    page.set_input_files("#f-attachments", str(receipt))
    page.evaluate(WATCH_PROGRESS)
    page.click("button[type=submit]")
    page.locator("#reference").wait_for()

    seen = page.evaluate("JSON.parse(sessionStorage.getItem('progress') || '[]')")
    values = [change["value"] for change in seen]
    assert seen and seen[0]["shown"], "the progress bar never appeared"
    assert values == sorted(values) and values[-1] == 100
    assert seen[-1]["label"] == "100 %"
    [complaint] = queued_complaints(intake_processes, web, amqp_settings, 1)
    [attachment] = complaint["attachments"]
    assert attachment["name"] == "recu.png"
    assert attachment["content_type"] == "image/png"


def test_an_upload_over_the_size_cap_shows_the_form_page_with_the_size_error(
    page: Any, intake_processes: IntakeProcesses, amqp_settings: Settings
) -> None:
    small = start_web(intake_processes, amqp_settings, webform_max_attachment_bytes=200_000)
    scans = [
        {"name": f"page{n}.png", "mimeType": "image/png", "buffer": b"\x00" * 200_000}
        for n in range(6)
    ]
    page.add_init_script(NO_INLINE_FILE_CHECKS)
    page.goto(small.url + "/en/")
    fill_contact_and_text(page, "My card was swallowed by the cash machine in Rabat.")
    page.set_input_files("#f-attachments", scans)
    page.click("button[type=submit]")

    notice = page.locator("#notice")
    notice.wait_for()
    assert "What you sent is too large: 1 MB at most in total." in notice.inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.input_value("#f-text") == "My card was swallowed by the cash machine in Rabat."
    assert page.input_value("#f-name") == "Fatima Zahra Alaoui"


@pytest.mark.parametrize("code", ["fr", "ar", "en", "es"])
def test_each_language_version_is_served_in_its_language_and_direction(
    page: Any,
    web: WebService,
    code: str,
) -> None:
    path = "/" if code == "fr" else f"/{code}/"
    page.set_viewport_size({"width": 1000, "height": 900})
    page.goto(web.url + path)
    screenshot(page, f"webform-{code}")

    html = page.locator("html")
    assert html.get_attribute("lang") == code
    assert html.get_attribute("dir") == ("rtl" if code == "ar" else "ltr")
    assert page.locator(".language-switch [aria-current=page]").get_attribute("lang") == code
    body = page.locator("main").inner_text()
    assert "10" in body and "40" in body
    assert page.locator("a[href='https://cmmb.ma/demande-de-mediation/']").count() == 1


def test_the_chosen_language_is_remembered_on_the_next_visit(
    page: Any,
    web: WebService,
) -> None:
    page.goto(web.url + "/")
    page.click(".language-switch a[lang=ar]")
    page.goto(web.url + "/")
    assert page.url.endswith("/ar/")
    page.click(".language-switch a[lang=fr]")
    page.goto(web.url + "/")
    assert page.url == web.url + "/"


def test_numbers_in_the_arabic_page_read_left_to_right(page: Any, web: WebService) -> None:
    # Where each digit group is drawn (more cases in test_arabic_pages_bidi.py).
    page.goto(web.url + "/ar/")
    positions = group_positions(page, "#f-phone-hint", "06 12 34 56 78")
    assert positions[0] < positions[-1], "the example number 06 12 34 56 78 is displayed backwards"
