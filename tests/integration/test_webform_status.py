"""The customer's own view (``/{lang}/status/``) in Chromium against ``intake web``.

A complaint made on the form is found with its reference and the phone
written another way; a wrong phone and a wrong reference get the same
"not found" page; the Arabic page is right to left with the reference
drawn left to right; lookups are limited per address.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from channels.webform.status import MAX_LOOKUPS_PER_HOUR, MAX_LOOKUPS_PER_REFERENCE_HOUR
from config.settings import Settings
from tests.peers.bidi import group_positions
from tests.peers.browser import screenshot
from tests.peers.processes import IntakeProcesses
from tests.peers.webform import WebService, fresh_form, start_web

pytestmark = pytest.mark.integration

TEXT = "Mon transfert envoyé hier n'est toujours pas arrivé chez mon frère à Agadir."


@pytest.fixture
def web(intake_processes: IntakeProcesses, amqp_settings: Settings) -> WebService:
    return start_web(intake_processes, amqp_settings)


def complaint_reference(page: Any, web: WebService) -> str:
    page.goto(web.url + "/")
    page.fill("#f-name", "Fatima Zahra Alaoui")
    page.fill("#f-phone", "06 61 23 45 67")
    page.fill("#f-text", TEXT)
    page.click("button[type=submit]")
    return str(page.locator("#reference").inner_text()).strip()


def look_up(page: Any, web: WebService, lang: str, reference: str, contact: str) -> None:
    page.goto(f"{web.url}/{lang}/status/")
    page.fill("#s-reference", reference)
    page.fill("#s-contact", contact)
    page.click("#status-button")
    page.wait_for_load_state()


def test_a_customer_sees_the_state_and_deadlines_and_nothing_else(
    page: Any, web: WebService
) -> None:
    reference = complaint_reference(page, web)

    look_up(page, web, "fr", reference.lower().replace("-", " "), "+212 6 61 23 45 67")
    screenshot(page, "status-fr-found")

    assert page.locator("#status-state").get_attribute("data-state") == "received"
    assert reference in page.locator("#status-result h2").inner_text()
    assert page.locator("#status-ack-due").inner_text().strip()
    assert page.locator("#status-answer-due").inner_text().strip()
    shown = page.locator("main").inner_text()
    assert "Fatima" not in shown and "Agadir" not in shown


def test_a_wrong_phone_and_a_wrong_reference_get_the_same_answer(
    page: Any, web: WebService
) -> None:
    reference = complaint_reference(page, web)

    look_up(page, web, "fr", reference, "06 61 23 45 68")
    wrong_phone = page.locator("#notice").inner_text()
    assert page.locator("#status-result").count() == 0
    look_up(page, web, "fr", "CP-2222-2222", "06 61 23 45 67")
    wrong_reference = page.locator("#notice").inner_text()

    assert page.locator("#status-result").count() == 0
    assert wrong_phone == wrong_reference
    assert "Aucune réclamation" in wrong_phone


def test_the_arabic_status_page_is_right_to_left_with_the_reference_left_to_right(
    page: Any, web: WebService
) -> None:
    reference = complaint_reference(page, web)

    look_up(page, web, "ar", reference, "0661234567")
    screenshot(page, "status-ar-found")

    assert page.get_attribute("html", "dir") == "rtl"
    assert page.locator("#status-state").get_attribute("data-state") == "received"
    positions = group_positions(page, "#status-result h2", reference)
    assert positions[0] < positions[1] < positions[2], positions
    hint = group_positions(page, "#s-contact-hint", "06 12 34 56 78")
    assert hint[0] < hint[-1]


def references(count: int) -> list[str]:
    """Well-formed references nobody was given (distinct, so no per-reference limit applies)."""
    letters = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    return [f"CP-2222-22{letters[i // 31]}{letters[i % 31]}" for i in range(count)]


def lookup(client: httpx.Client, token: str, reference: str, address: str) -> int:
    # ``intake web`` trusts X-Forwarded-For from the local proxy (127.0.0.1), as behind nginx.
    return client.post(
        "/en/status/",
        data={"csrf_token": token, "reference": reference, "contact": "0661234567"},
        headers={"X-Forwarded-For": address},
    ).status_code


def test_lookups_need_the_token_and_are_limited_per_address(web: WebService) -> None:
    with httpx.Client(base_url=web.url) as client:
        refused = client.post("/en/status/", data={"reference": "CP-2222-2222", "contact": "x"})
        token = fresh_form(client, "/en/status/")
        answers = [
            lookup(client, token, reference, "198.51.100.7")
            for reference in references(MAX_LOOKUPS_PER_HOUR + 1)
        ]
        elsewhere = lookup(client, token, references(1)[0], "198.51.100.8")

    assert refused.status_code == 403
    assert answers[:MAX_LOOKUPS_PER_HOUR] == [404] * MAX_LOOKUPS_PER_HOUR
    assert answers[-1] == 429
    assert elsewhere == 404  # another client is not held back


def test_an_ipv6_client_is_limited_across_its_whole_64(web: WebService) -> None:
    with httpx.Client(base_url=web.url) as client:
        token = fresh_form(client, "/en/status/")
        answers = [
            lookup(client, token, reference, f"2001:db8:7:1::{number:x}")
            for number, reference in enumerate(references(MAX_LOOKUPS_PER_HOUR + 1), start=1)
        ]

    assert answers[-1] == 429


def test_one_reference_is_limited_whatever_the_address(web: WebService) -> None:
    # Someone who read a reference tries phone numbers from many addresses.
    with httpx.Client(base_url=web.url) as client:
        token = fresh_form(client, "/en/status/")
        answers = [
            lookup(client, token, "CP-3333-3333", f"203.0.113.{number}")
            for number in range(1, MAX_LOOKUPS_PER_REFERENCE_HOUR + 2)
        ]

    assert answers[:MAX_LOOKUPS_PER_REFERENCE_HOUR] == [404] * MAX_LOOKUPS_PER_REFERENCE_HOUR
    assert answers[-1] == 429


def test_the_status_from_case_handling_and_its_new_deadline_are_shown(services: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from channels.webform.status import find_status
    from gateway.store.cases import StatusReport
    from normalizer.contract import Channel, Customer
    from tests.peers.acks import other_complaint

    complaint = other_complaint(
        services, Channel.SMS, TEXT, Customer(phone="+212661234567", email="f@example.ma")
    )
    new_due = datetime.now(UTC) + timedelta(days=60)
    services.store.cases.report(
        complaint.reference,
        StatusReport("extended", datetime.now(UTC), answer_due_at=new_due, reason="documents"),
        source="api",
        actor="test",
    )

    found = find_status(services, complaint.reference, "F@Example.ma")
    assert found is not None and found.state == "extended"
    assert found.extended_until is not None
    assert find_status(services, complaint.reference, "g@example.ma") is None
