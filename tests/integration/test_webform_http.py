"""The public form's protocol edge over real HTTP: guards, refusals, our own failures.

A real ``intake web`` process and a plain HTTP client (what a bot or a
careless proxy would send). Every refusal is a page in the customer's
language with the right status; refused input is quarantined with its
reason; a store that fails answers 503 and records nothing.
"""

from __future__ import annotations

import html
import http.client
import io
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from channels.webform.body import max_body_bytes
from config.settings import Settings, load_settings
from gateway.store import Store, open_store
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, QuarantineRow
from tests.peers.processes import IntakeProcesses, wait_until
from tests.peers.services import drop_postgres_database
from tests.peers.webform import REFERENCE, WebService, fresh_form, start_web, valid_fields


@pytest.fixture
def web(intake_processes: IntakeProcesses, settings: Settings) -> WebService:
    return start_web(intake_processes, settings, webform_max_attachment_bytes=200_000)


@pytest.fixture
def client(web: WebService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web.url, timeout=30) as http:
        yield http


@pytest.fixture
def store(settings: Settings, web: WebService) -> Iterator[Store]:
    opened = open_store(settings, migrate_schema=False)
    try:
        yield opened
    finally:
        opened.close()


def quarantined(store: Store) -> list[str]:
    with reading(store.engine) as session:
        return list(session.scalars(select(QuarantineRow.reason_code)))


def complaints(store: Store) -> int:
    """The complaints recorded, once the runner has made every captured post one."""
    wait_until(lambda: not store.captures.backlog(), "the captured posts to be normalized")
    with reading(store.engine) as session:
        return len(list(session.scalars(select(ComplaintRow.id))))


def png(width: int = 40, height: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def test_a_post_without_the_form_token_is_refused_and_shows_the_form_again(
    client: httpx.Client, store: Store
) -> None:
    response = client.post("/fr/", data=valid_fields(token=""))

    assert response.status_code == 403
    assert "Le formulaire a expiré" in html.unescape(response.text)
    assert "Fatima Zahra" in html.unescape(response.text)  # what was typed comes back
    assert complaints(store) == 0


def test_a_token_from_another_browser_is_refused(web: WebService, client: httpx.Client) -> None:
    token = fresh_form(client)
    with httpx.Client(base_url=web.url) as other_browser:
        fresh_form(other_browser)
        response = other_browser.post("/fr/", data=valid_fields(token))

    assert response.status_code == 403


def test_a_filled_honeypot_is_quarantined_and_not_recorded(
    client: httpx.Client, store: Store
) -> None:
    token = fresh_form(client)
    response = client.post(
        "/fr/", data={**valid_fields(token), "contact_me_by_fax_only": "http://spam.example"}
    )

    assert response.status_code == 400
    assert quarantined(store) == ["honeypot"]
    assert complaints(store) == 0


def test_posts_over_the_hourly_limit_get_a_429_page_in_the_customers_language(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(intake_processes, settings, webform_max_per_hour=2)
    with httpx.Client(base_url=web.url) as client:
        token = fresh_form(client, "/en/")
        answers = [
            client.post("/en/", data=valid_fields(token, text=f"Card blocked, attempt {n}."))
            for n in range(3)
        ]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "Too many complaints have been sent from your connection" in html.unescape(
        answers[2].text
    )
    assert answers[2].headers["Retry-After"] == "3600"


def test_typing_mistakes_do_not_use_up_the_hourly_complaint_limit(
    client: httpx.Client, store: Store
) -> None:
    token = fresh_form(client)
    mistakes = [
        client.post("/fr/", data=valid_fields(token, phone=f"06 12 {n}")).status_code
        for n in range(11)
    ]
    accepted = client.post("/fr/", data=valid_fields(token))

    assert mistakes == [422] * 11  # more than INTAKE_WEBFORM_MAX_PER_HOUR (10)
    assert accepted.status_code == 200, html.unescape(accepted.text)[-1500:]
    assert REFERENCE.search(accepted.text)
    assert complaints(store) == 1


def test_posts_over_the_flood_guard_get_a_429_page_whatever_their_outcome(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(
        intake_processes, settings, webform_max_posts_per_hour=3, webform_max_per_hour=2
    )
    with httpx.Client(base_url=web.url) as client:
        token = fresh_form(client, "/es/")
        answers = [client.post("/es/", data=valid_fields(token, phone="12")) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [422, 422, 422, 429]
    assert answers[3].headers["Retry-After"] == "3600"
    assert 'lang="es"' in answers[3].text


def test_an_oversized_post_gets_the_size_error_page_in_its_language_with_what_was_typed(
    web: WebService, client: httpx.Client, settings: Settings, store: Store
) -> None:
    cap = max_body_bytes(settings.model_copy(update={"webform_max_attachment_bytes": 200_000}))
    token = fresh_form(client, "/en/")
    files = [("attachments", (f"scan{n}.png", b"\x00" * (cap // 5), "image/png")) for n in range(6)]
    text = "My transfer of 900 dirhams to Tangier never arrived."
    response = client.post("/en/", data=valid_fields(token, text=text), files=files)

    page = html.unescape(response.text)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="en"' in page
    assert "What you sent is too large: 1 MB at most in total." in page
    assert text in page and "Fatima Zahra" in page
    assert complaints(store) == 0
    assert client.post("/en/", data=valid_fields(token)).status_code == 200  # same connection


def test_a_post_declaring_more_than_the_cap_is_answered_from_its_head_alone(
    web: WebService, settings: Settings
) -> None:
    cap = max_body_bytes(settings.model_copy(update={"webform_max_attachment_bytes": 200_000}))
    text = "Mon transfert de 900 dirhams vers Tanger n'est jamais arrivé."
    built = httpx.Request(
        "POST",
        f"{web.url}/en/",
        data=valid_fields("", text=text),
        files=[("attachments", ("scan.png", b"\x00" * (cap // 3), "image/png"))],
    )
    address = urlsplit(web.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        connection.putrequest("POST", "/en/")
        connection.putheader("Content-Type", built.headers["content-type"])
        connection.putheader("Content-Length", str(50 * cap))
        connection.endheaders()
        # A third of the cap, far less than declared: the rest never comes.
        connection.send(built.read())
        response = connection.getresponse()
        page = html.unescape(response.read().decode())
    finally:
        connection.close()

    assert response.status == 413
    assert '<html lang="en"' in page
    assert text in page and "Fatima Zahra" in page


def test_a_large_post_to_another_path_under_a_form_language_gets_the_gateway_limit(
    client: httpx.Client, settings: Settings
) -> None:
    response = client.post("/fr/other", content=b"x" * (settings.max_request_bytes + 1))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_a_refused_form_names_the_attached_files_to_attach_again(
    client: httpx.Client,
) -> None:
    token = fresh_form(client)
    response = client.post(
        "/fr/",
        data=valid_fields(token, phone="12"),
        files=[("attachments", ("reçu-agence.png", png(), "image/png"))],
    )

    page = html.unescape(response.text)
    reattach = page[page.index('id="f-attachments-reattach"') :]
    assert response.status_code == 422
    assert "Vos pièces jointes n'ont pas été gardées : joignez de nouveau ces fichiers" in reattach
    assert "<bdi>reçu-agence.png</bdi>" in reattach
    assert '<a href="#f-attachments">Vos pièces jointes' in page  # in the error summary too


def test_a_file_that_is_not_a_document_gets_an_error_on_the_attachments_field(
    client: httpx.Client, store: Store
) -> None:
    token = fresh_form(client)
    response = client.post(
        "/fr/",
        data=valid_fields(token),
        files=[("attachments", ("facture.pdf", b"MZ\x90\x00 not a pdf at all", "application/pdf"))],
    )

    assert response.status_code == 422
    assert "« facture.pdf » n'est pas un fichier PDF, JPEG, PNG ou TIFF." in html.unescape(
        response.text
    )
    assert 'id="f-attachments" name="attachments" type="file" multiple' in response.text
    assert quarantined(store) == ["invalid_field"]


def test_a_file_over_the_size_cap_is_refused_with_the_cap_in_megabytes(
    client: httpx.Client,
) -> None:
    token = fresh_form(client, "/es/")
    big = png(1200, 1200) + b"\x00" * 200_000
    response = client.post(
        "/es/", data=valid_fields(token), files=[("attachments", ("foto.png", big, "image/png"))]
    )

    assert response.status_code == 422
    assert "«foto.png» supera los 0.2 MB." in html.unescape(response.text)


def test_a_photo_larger_than_the_api_body_limit_goes_through_the_form(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(intake_processes, settings)  # INTAKE_MAX_REQUEST_BYTES: 1 MB by default
    photo = io.BytesIO()
    Image.frombytes("RGB", (900, 900), os.urandom(900 * 900 * 3)).save(photo, "PNG")
    assert photo.tell() > settings.max_request_bytes
    with httpx.Client(base_url=web.url, timeout=60) as client:
        token = fresh_form(client)
        response = client.post(
            "/fr/",
            data=valid_fields(token),
            files=[("attachments", ("photo.png", photo.getvalue(), "image/png"))],
        )

    assert response.status_code == 200, html.unescape(response.text)[-2000:]
    assert REFERENCE.search(response.text)


def test_six_files_are_refused_with_the_five_file_limit(client: httpx.Client) -> None:
    token = fresh_form(client)
    files = [("attachments", (f"page{n}.png", png(), "image/png")) for n in range(6)]
    response = client.post("/fr/", data=valid_fields(token), files=files)

    assert response.status_code == 422
    assert "Vous pouvez joindre 5 fichiers au plus." in html.unescape(response.text)


def test_sending_the_same_form_twice_gives_the_same_reference(
    client: httpx.Client, store: Store
) -> None:
    token = fresh_form(client)
    first = client.post("/fr/", data=valid_fields(token))
    again = client.post("/fr/", data=valid_fields(token))

    assert first.status_code == again.status_code == 200
    assert REFERENCE.findall(first.text)[0] == REFERENCE.findall(again.text)[0]
    assert complaints(store) == 1


def test_the_form_routes_leave_the_operator_and_api_routes_alone(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"]
    assert client.get("/docs").status_code == 200
    assert client.post("/v1/complaints", json={}).status_code == 401
    assert client.get("/metrics").status_code == 200
    assert client.get("/assets/webform/../../config/settings.py").status_code == 404


def test_a_failing_store_answers_503_in_the_language_and_keeps_the_text(
    intake_processes: IntakeProcesses, data_dir: object, postgres_url: str
) -> None:
    settings = load_settings(data_dir=data_dir, database_url=postgres_url)
    web = start_web(intake_processes, settings)
    with httpx.Client(base_url=web.url) as client:
        token = fresh_form(client, "/ar/")
        drop_postgres_database(postgres_url.rsplit("/", 1)[1])
        response = client.post("/ar/", data=valid_fields(token, text="البطاقة ديالي تبلوكات"))

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "تعذر تسجيل شكايتكم بسبب مشكل من جهتنا" in html.unescape(response.text)
    assert "البطاقة ديالي تبلوكات" in html.unescape(response.text)


def test_the_form_records_a_complaint_and_counts_attempts_on_postgresql(
    intake_processes: IntakeProcesses, data_dir: object, postgres_url: str
) -> None:
    settings = load_settings(data_dir=data_dir, database_url=postgres_url)
    web = start_web(intake_processes, settings, webform_max_per_hour=1)
    with httpx.Client(base_url=web.url) as client:
        token = fresh_form(client)
        first = client.post("/fr/", data=valid_fields(token))
        second = client.post("/fr/", data=valid_fields(token, text="Une autre réclamation."))

    assert first.status_code == 200
    assert REFERENCE.search(first.text)
    assert second.status_code == 429
