"""The letter upload API end to end: upload, OCR worker, complaint released to the queue."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from channels.letters import intake
from config.settings import Settings
from gateway.app import create_app
from gateway.lib.services import Services, build_services
from gateway.store.tables import QuarantineRow
from tests.peers import scans
from tests.peers.complaints import count_rows, outbox_rows
from tests.peers.ocr import ocr_worker as running_ocr_worker
from tests.peers.processes import wait_until

MB = 1024 * 1024
SCANNER = {"letters:write", "complaints:status"}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    configured = settings.model_copy(update={"max_request_bytes": 60 * MB})
    built = build_services(configured)
    yield built
    built.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    key = services.store.api_keys.create("scanner", SCANNER)
    return TestClient(create_app(services), headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def ocr_worker(services: Services) -> Iterator[None]:
    with running_ocr_worker(services):
        yield


def two_pages() -> list[tuple[str, tuple[str, bytes, str]]]:
    first = scans.encode(scans.render_page(scans.FRENCH_LETTER), "png")
    second = scans.encode(scans.render_page(scans.FRENCH_LETTER_PAGE_2, angle=-1.5), "jpeg")
    return [("files", ("p1.png", first, "image/png")), ("files", ("p2.jpg", second, "image/jpeg"))]


def finished(client: TestClient, url: str) -> dict:
    def done() -> dict | None:
        answer = client.get(url).json()
        return answer if answer["status"] in ("done", "failed") else None

    return wait_until(done, "the letter's OCR", timeout=120, interval=0.2)


def test_upload_answers_202_with_reference_and_status_url(client: TestClient) -> None:
    answer = client.post("/v1/letters", files=two_pages(), data={"sender_name": "Fatima"})
    assert answer.status_code == 202
    body = answer.json()
    assert body["reference"].startswith("CP-")
    assert body["pages"] == 2
    assert client.get(body["status_url"]).json()["status"] == "pending"


def test_upload_returns_before_ocr_runs(client: TestClient) -> None:
    # No OCR worker runs here: the answer cannot have waited for one.
    answer = client.post("/v1/letters", files=two_pages())
    assert answer.status_code == 202
    status = client.get(answer.json()["status_url"]).json()
    assert status["status"] == "pending"
    assert status["page_results"] == []


def test_another_partners_key_cannot_read_the_letter(
    client: TestClient, services: Services
) -> None:
    answer = client.post("/v1/letters", files=two_pages())
    url = answer.json()["status_url"]
    other = services.store.api_keys.create("other-partner")
    refused = client.get(url, headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 404
    mailroom = services.store.api_keys.create("mailroom-supervisor", {"complaints:read-all"})
    seen = client.get(url, headers={"Authorization": f"Bearer {mailroom}"})
    assert seen.status_code == 200 and seen.json()["reference"] == answer.json()["reference"]


def test_letter_is_read_and_its_complaint_released(
    client: TestClient, services: Services, ocr_worker: None
) -> None:
    body = client.post("/v1/letters", files=two_pages()).json()
    letter = finished(client, body["status_url"])
    assert letter["status"] == "done"
    assert letter["language"] == "fr"
    assert [page["page"] for page in letter["page_results"]] == [1, 2]
    assert "Casablanca" in letter["text"] and "salutations" in letter["text"]
    complaint = services.store.complaints.get_by_reference(body["reference"])
    assert complaint is not None
    assert complaint.channel.value == "letter"
    assert complaint.body.index("Casablanca") < complaint.body.index("salutations")
    assert [a.name for a in complaint.attachments] == ["p1.png", "p2.jpg"]
    assert "agence" in (complaint.attachments[0].ocr_text or "")
    row = outbox_rows(services.store)[-1]
    assert row.routing_key == "complaint.letter.fr"
    assert row.available_at is not None and row.available_at <= datetime.now(UTC)


def test_complaint_waits_in_the_outbox_until_ocr_is_done(
    client: TestClient, services: Services
) -> None:
    client.post("/v1/letters", files=two_pages())
    assert services.store.outbox.pending(10) == []


def test_reception_date_starts_the_legal_clock(client: TestClient, services: Services) -> None:
    day = (datetime.now(UTC) - timedelta(days=5)).date()
    body = client.post(
        "/v1/letters", files=two_pages(), data={"received_on": day.isoformat()}
    ).json()
    complaint = services.store.complaints.get_by_reference(body["reference"])
    assert complaint is not None
    assert complaint.received_at.date() == day
    assert complaint.ack_due_at.date() == day + timedelta(days=10)


def test_same_scans_sent_twice_are_one_letter(client: TestClient) -> None:
    files = two_pages()
    first = client.post("/v1/letters", files=files).json()
    again = client.post("/v1/letters", files=files)
    assert again.status_code == 200
    assert again.json()["reference"] == first["reference"]
    assert again.json()["id"] == first["id"]


def test_upload_without_api_key_is_refused(services: Services) -> None:
    anonymous = TestClient(create_app(services))
    assert anonymous.post("/v1/letters", files=two_pages()).status_code == 401


def test_reception_date_in_the_future_is_refused(client: TestClient) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    answer = client.post("/v1/letters", files=two_pages(), data={"received_on": tomorrow})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "received_on"


def test_refused_file_is_quarantined_with_its_reason(
    client: TestClient, services: Services
) -> None:
    files = [("files", ("lettre.pdf", scans.executable_bytes(), "application/pdf"))]
    answer = client.post("/v1/letters", files=files, headers={"Accept-Language": "ar"})
    assert answer.status_code == 415
    assert answer.json()["error"]["message"].startswith("نوع الملف مرفوض")
    assert count_rows(services.store, QuarantineRow) == 1


# -- letters are per partner (review S15) ----------------------------------------------
def test_another_partner_sending_the_same_scans_gets_its_own_letter_never_the_first_ones(
    client: TestClient, services: Services
) -> None:
    files = two_pages()
    first = client.post("/v1/letters", files=files, data={"sender_name": "Fatima"}).json()
    other = {"Authorization": f"Bearer {services.store.api_keys.create('other', SCANNER)}"}

    copied = client.post("/v1/letters", files=files, data={"sender_name": "Karim"}, headers=other)

    assert copied.status_code == 202, copied.text
    mine = copied.json()
    assert {mine["id"], mine["reference"], mine["complaint_id"]}.isdisjoint(
        {first["id"], first["reference"], first["complaint_id"]}
    )
    assert client.get(mine["status_url"], headers=other).status_code == 200
    complaint = services.store.complaints.get_by_reference(mine["reference"])
    assert complaint is not None and complaint.customer.name == "Karim"
    assert client.post("/v1/letters", files=files).json()["id"] == first["id"]


def test_a_partners_letter_recorded_under_the_old_key_is_still_found_for_that_partner(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = two_pages()
    # As the gateway recorded every letter before partners were told apart.
    monkeypatch.setattr(intake, "letter_dedup_key", lambda _upload, key: f"letter:{key}")
    before = client.post("/v1/letters", files=files).json()
    monkeypatch.undo()
    other = {"Authorization": f"Bearer {services.store.api_keys.create('other', SCANNER)}"}

    again = client.post("/v1/letters", files=files)
    copied = client.post("/v1/letters", files=files, headers=other)

    assert again.status_code == 200 and again.json()["id"] == before["id"]
    assert copied.status_code == 202 and copied.json()["id"] != before["id"]


def test_a_key_without_the_letters_scope_cannot_upload(services: Services) -> None:
    crm = services.store.api_keys.create("crm")
    client = TestClient(create_app(services), headers={"Authorization": f"Bearer {crm}"})

    answer = client.post("/v1/letters", files=two_pages())

    assert answer.status_code == 403
    assert answer.json()["error"]["scope"] == "letters:write"


def test_reception_date_more_than_the_bound_in_the_past_is_refused(client: TestClient) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=45)).date().isoformat()

    answer = client.post("/v1/letters", files=two_pages(), data={"received_on": long_ago})

    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "received_on"
    assert "more than 30 days in the past" in answer.json()["error"]["message"]


def test_status_url_ignores_the_host_the_caller_sent(
    client: TestClient, services: Services
) -> None:
    answer = client.post("/v1/letters", files=two_pages(), headers={"Host": "evil.example"})

    base = services.settings.public_base_url
    assert answer.json()["status_url"] == f"{base}/v1/letters/{answer.json()['id']}"
    assert answer.headers["Location"] == answer.json()["status_url"]
