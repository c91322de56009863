"""Hostile files: each is refused cleanly (and kept in quarantine), and the next letter is read."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from gateway.app import create_app
from gateway.ops.quarantine import Quarantine
from gateway.services import Services, build_services
from tests.peers import scans
from tests.peers.ocr import ocr_worker
from tests.peers.processes import wait_until


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return scans.huge_png(tmp_path_factory.mktemp("bomb") / "huge.png").read_bytes()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"max_request_bytes": 60 * 1024 * 1024}))
    with ocr_worker(built):
        yield built
    built.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    key = services.store.api_keys.create("scanner")
    return TestClient(create_app(services), headers={"Authorization": f"Bearer {key}"})


def upload(client: TestClient, name: str, data: bytes, kind: str = "application/octet-stream"):
    return client.post("/v1/letters", files=[("files", (name, data, kind))])


def good_letter_is_still_read(client: TestClient) -> None:
    page = scans.encode(scans.render_page(scans.FRENCH_LETTER_PAGE_2), "png")
    answer = upload(client, "suite.png", page, "image/png")
    assert answer.status_code == 202
    url = answer.json()["status_url"]

    def read() -> dict | None:
        body = client.get(url).json()
        return body if body["status"] == "done" else None

    letter = wait_until(read, "the next letter's OCR", timeout=120, interval=0.2)
    assert "transfert" in letter["text"]


def test_50000_by_50000_png_is_refused_and_the_next_letter_read(
    client: TestClient, huge_png: bytes
) -> None:
    answer = upload(client, "bombe.png", huge_png, "image/png")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "too_many_pixels"
    good_letter_is_still_read(client)


def test_pdf_with_thousands_of_pages_is_refused_and_the_next_letter_read(
    client: TestClient,
) -> None:
    answer = upload(client, "pages.pdf", scans.many_pages_pdf(5000), "application/pdf")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "too_many_pages"
    good_letter_is_still_read(client)


def test_executable_named_pdf_is_refused_and_the_next_letter_read(client: TestClient) -> None:
    answer = upload(client, "lettre.pdf", scans.executable_bytes(), "application/pdf")
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_type"
    good_letter_is_still_read(client)


def test_truncated_tiff_is_refused_and_the_next_letter_read(client: TestClient) -> None:
    answer = upload(client, "coupee.tif", scans.truncated_tiff(), "image/tiff")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "unreadable"
    good_letter_is_still_read(client)


def test_truncated_multipage_tiffs_are_refused_kept_and_the_next_letter_read(
    services: Services, client: TestClient
) -> None:
    cuts = scans.truncated_multipage_tiffs()
    # Some of these cuts make Pillow fail with a TypeError, not an OSError.
    assert TypeError in {scans.pillow_error(data) for data in cuts}
    for number, data in enumerate(cuts):
        answer = upload(client, f"coupee-{number}.tif", data, "image/tiff")
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "unreadable"
    kept = Quarantine(services.store.engine).entries(channel="letter")
    assert sorted(item.source_ids["file_name"] for item in kept) == [
        f"coupee-{number}.tif" for number in range(len(cuts))
    ]
    assert {item.reason_code for item in kept} == {"unreadable"}
    good_letter_is_still_read(client)


def test_password_protected_pdf_is_refused(client: TestClient) -> None:
    answer = upload(client, "secret.pdf", scans.encrypted_pdf(), "application/pdf")
    assert answer.json()["error"]["code"] == "encrypted_pdf"


def test_pdf_carrying_javascript_is_refused(client: TestClient) -> None:
    answer = upload(client, "script.pdf", scans.javascript_pdf(), "application/pdf")
    assert answer.json()["error"]["code"] == "pdf_javascript"


@pytest.mark.parametrize("where", sorted(scans.ACTIVE_CONTENT))
def test_pdf_with_escaped_script_names_is_refused(client: TestClient, where: str) -> None:
    data = scans.javascript_pdf(where, escaped=True)
    answer = upload(client, "script.pdf", data, "application/pdf")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "pdf_javascript"


@pytest.mark.parametrize("encoding", ["flate", "run_length"])
def test_pdf_with_document_script_in_an_object_stream_is_refused(
    client: TestClient, encoding: str
) -> None:
    # run_length: a filter the gateway's own scan does not decode; poppler's verdict
    # ("JavaScript: yes") refuses it.
    data = scans.object_stream_pdf(scans.ACTIVE_CONTENT["names"], encoding=encoding)
    answer = upload(client, "script.pdf", data, "application/pdf")
    assert answer.json()["error"]["code"] == "pdf_javascript"


def test_pdf_with_an_object_stream_and_no_script_is_accepted(client: TestClient) -> None:
    answer = upload(client, "lettre.pdf", scans.object_stream_pdf(), "application/pdf")
    assert answer.status_code == 202, answer.text


def test_letter_over_the_page_cap_across_files_is_refused(
    services: Services, client: TestClient
) -> None:
    page = scans.encode(scans.render_page(("Page",), noise=0.0, size=(600, 300)), "png")
    files = [("files", (f"p{i}.png", page + bytes([i]), "image/png")) for i in range(51)]
    answer = client.post("/v1/letters", files=files)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "too_many_pages"


def test_ocr_job_over_its_time_limit_fails_the_letter_not_the_worker(
    settings: Settings,
) -> None:
    from channels.letters.intake import LetterFile, LetterUpload, accept_letter
    from channels.letters.queue import LetterQueue

    # Accepted with the normal limits (upload checks use them too); read by a
    # worker whose page budget no dense page fits in, on the same store.
    normal = build_services(settings)
    tight = build_services(settings.model_copy(update={"ocr_timeout": 0.3}))
    try:
        pages = [scans.render_page(scans.FRENCH_LETTER, angle=1.0) for _ in range(6)]
        accepted = accept_letter(
            normal,
            LetterUpload(files=[LetterFile("long.tif", scans.multipage_tiff(pages))], source="api"),
        )
        queue = LetterQueue(tight.store.engine)

        def failed():
            row = queue.get(accepted.letter_id)
            return row if row is not None and row.status == "failed" else None

        with ocr_worker(tight) as thread:
            row = wait_until(failed, "the letter to fail on its time limit", timeout=60)
            assert row.error_code == "timeout"
            assert thread.is_alive()
        complaint = tight.store.complaints.get_by_reference(accepted.reference)
        assert complaint is not None and "illisible" in (complaint.subject or "")
        assert complaint.needs_review
    finally:
        tight.close()
        normal.close()
