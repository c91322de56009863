"""Hostile files: each is refused cleanly (and kept in quarantine), and the next letter is read.

The last part runs the PDF checks directly (``pdf_info``, with poppler and
qpdf, as the sandboxed inspection does): every way of hiding an action, and
the everyday PDFs that must still pass.
"""

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.services import Services, build_services
from gateway.store.quarantine import Quarantine
from normalizer.ocr import pdf
from normalizer.ocr.sandbox import Limits
from tests.peers import scans
from tests.peers.ocr import ocr_worker, stand_in_tesseract
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
    key = services.store.api_keys.create("scanner", {"letters:write", "complaints:status"})
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


@pytest.mark.parametrize("where", sorted(scans.ACTIVE_CONTENT))
@pytest.mark.parametrize(
    ("encoding", "dictionary"), [("flate", "name_with_obj"), ("run_length", "over_4_kib")]
)
def test_pdf_with_script_or_launch_in_an_object_stream_is_refused(
    client: TestClient, where: str, encoding: str, dictionary: str
) -> None:
    data = scans.object_stream_pdf(
        scans.ACTIVE_CONTENT[where], encoding=encoding, dictionary=dictionary
    )
    answer = upload(client, "script.pdf", data, "application/pdf")
    assert answer.status_code == 422
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
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.letters.intake import LetterFile, LetterUpload, accept_letter

    # Every page's recognition takes 5 s, over its 1 s budget, whatever this
    # machine's speed: two pages time out, the rest are skipped. Accepted with
    # the normal limits (the upload's checks do not call tesseract).
    stand_in_tesseract(tmp_path / "bin", 5.0, monkeypatch)
    normal = build_services(settings)
    tight = build_services(settings.model_copy(update={"ocr_timeout": 1.0}))
    try:
        pages = [scans.render_page(scans.FRENCH_LETTER, angle=1.0) for _ in range(6)]
        accepted = accept_letter(
            normal,
            LetterUpload(files=[LetterFile("long.tif", scans.multipage_tiff(pages))], source="api"),
        )
        queue = tight.store.letters

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


# -- the PDF checks themselves, as the sandboxed inspection runs them (no upload) ---
LIMITS = Limits(timeout=20.0, memory_mb=1024)


def pdf_refusal(tmp_path: Path, data: bytes) -> str | None:
    """The code ``pdf_info`` refuses ``data`` with, or None when the file is accepted."""
    path = tmp_path / "lettre.pdf"
    path.write_bytes(data)
    try:
        pdf.pdf_info(path, max_pages=50, limits=LIMITS)
    except pdf.PdfRefused as exc:
        return exc.code
    return None


@pytest.mark.parametrize("where", ["open_action", "launch"])
@pytest.mark.parametrize("encoding", ["flate", "hex", "run_length", "predictor"])
@pytest.mark.parametrize("dictionary", sorted(scans.OBJECT_STREAM_DICTIONARIES))
@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "escaped"])
def test_pdf_action_inside_an_object_stream_is_refused(
    tmp_path: Path, where: str, encoding: str, dictionary: str, escaped: bool
) -> None:
    # Actions on opening: poppler does not report them, so qpdf's listing must.
    catalog = scans.ACTIVE_CONTENT[where]
    catalog = scans.escape_names(catalog) if escaped else catalog
    data = scans.object_stream_pdf(catalog, encoding=encoding, dictionary=dictionary)
    assert b"Launch" not in data and b"JS" not in data  # nothing a plain byte scan could see
    assert pdf_refusal(tmp_path, data) == "pdf_javascript"


@pytest.mark.parametrize("where", sorted(scans.ACTIVE_CONTENT))
@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "escaped"])
def test_qpdf_listing_finds_every_kind_of_active_content(
    tmp_path: Path, where: str, escaped: bool
) -> None:
    # The document-level script too, without poppler's "JavaScript: yes" in front.
    path = tmp_path / "script.pdf"
    path.write_bytes(scans.javascript_pdf(where, escaped=escaped))
    with pytest.raises(pdf.PdfRefused) as caught:
        pdf.refuse_active_content(path, LIMITS)
    assert caught.value.code == "pdf_javascript"


# PDFs a mailroom sends every day, built when their test runs.
CLEAN_PDFS: dict[str, Callable[[], bytes]] = {
    "text": lambda: scans.text_pdf(scans.FRENCH_LETTER),
    "scan": lambda: scans.encode(scans.render_page(scans.FRENCH_LETTER), "pdf"),
    # Names spelled in the page's text and in a string are words, not actions.
    "words": lambda: scans.text_pdf(
        ("Menu /JavaScript /JS /Launch",), catalog_extra=b"/Lang (/JS) "
    ),
} | {
    f"{encoding}-{shape}": partial(scans.object_stream_pdf, encoding=encoding, dictionary=shape)
    for encoding in ("flate", "hex", "run_length", "predictor")
    for shape in scans.OBJECT_STREAM_DICTIONARIES
}


def _with_an_object_at_offset_zero() -> bytes:
    """A text PDF whose cross-reference table lists one more object, at offset 0 (a
    common writer's slip: qpdf warns and lists it as null, readers open the file)."""
    data = scans.text_pdf(scans.FRENCH_LETTER)
    head, _, tail = data.partition(b"xref\n")
    count = int(tail.split(b"\n", 2)[0].split()[1])
    entries_end = tail.index(b"trailer")
    table = tail[:entries_end].replace(b"0 %d\n" % count, b"0 %d\n" % (count + 1), 1)
    table += b"0000000000 00000 n \n"
    trailer = tail[entries_end:].replace(b"/Size %d" % count, b"/Size %d" % (count + 1), 1)
    return head + b"xref\n" + table + trailer


def _with_a_null_object() -> bytes:
    objects = scans._pdf_objects(scans.FRENCH_LETTER, 1, b"")
    return scans._pdf([*objects, b"null"])


CLEAN_PDFS["null-object"] = _with_a_null_object
CLEAN_PDFS["offset-zero"] = _with_an_object_at_offset_zero


def _attachment_annotation() -> bytes:
    objects = scans._pdf_objects(scans.FRENCH_LETTER, 1, b"")
    page = next(i for i, item in enumerate(objects) if b"/Type /Page " in item)
    objects[page] = objects[page].replace(
        b"/Type /Page ", b"/Type /Page /Annots [%d 0 R] " % (len(objects) + 1), 1
    )
    file_spec = b"/FS << /Type /Filespec /F (facture.exe) /EF << /F %d 0 R >> >>" % (
        len(objects) + 2
    )
    return scans._pdf(
        [
            *objects,
            b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 50 50] " + file_spec + b" >>",
            b"<< /Length 5 >>\nstream\nMZ\x90\x00\x03\nendstream",
        ]
    )


def _embedded_file_without_its_type() -> bytes:
    count = len(scans._pdf_objects(scans.FRENCH_LETTER, 1, b""))
    tree = b"/Names << /EmbeddedFiles << /Names [(a.exe) %d 0 R] >> >> " % (count + 1)
    objects = scans._pdf_objects(scans.FRENCH_LETTER, 1, tree)
    return scans._pdf(
        [
            *objects,
            b"<< /Type /Filespec /F (a.exe) /EF << /F %d 0 R >> >>" % (count + 2),
            b"<< /Length 5 >>\nstream\nMZ\x90\x00\x03\nendstream",
        ]
    )


@pytest.mark.parametrize(
    "make", [_attachment_annotation, _embedded_file_without_its_type], ids=["annotation", "tree"]
)
def test_pdf_carrying_a_file_is_refused(tmp_path: Path, make: Callable[[], bytes]) -> None:
    # /EmbeddedFile is an optional label on the carried stream: the places
    # that carry a file (/EF, the /EmbeddedFiles tree, an attachment) are checked.
    data = make()
    assert b"/EmbeddedFile " not in data
    assert pdf_refusal(tmp_path, data) == "pdf_javascript"


@pytest.mark.parametrize("kind", sorted(CLEAN_PDFS))
def test_pdf_without_active_content_is_accepted(tmp_path: Path, kind: str) -> None:
    assert pdf_refusal(tmp_path, CLEAN_PDFS[kind]()) is None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            partial(scans.object_stream_pdf, encoding="image_filter", packed=3), id="filter"
        ),
        pytest.param(scans.nested_action_pdf, id="nesting"),
    ],
)
def test_pdf_with_an_object_qpdf_could_not_read_is_refused_as_unreadable(
    tmp_path: Path, make: Callable[[], bytes]
) -> None:
    # qpdf only warns and lists the object as null (a font in a stream no
    # reader decodes; a script behind arrays nested past its limit): what the
    # object holds is unknown, so the file is not judged safe.
    assert pdf_refusal(tmp_path, make()) == "unreadable"


def test_file_qpdf_cannot_parse_is_refused_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "abime.pdf"
    path.write_bytes(scans.text_pdf(scans.FRENCH_LETTER)[:300])
    with pytest.raises(pdf.PdfRefused) as caught:
        pdf.refuse_active_content(path, LIMITS)
    assert caught.value.code == "unreadable"
