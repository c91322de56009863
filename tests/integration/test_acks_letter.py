"""Letter acknowledgements: a PDF in French and Arabic for the mailroom, proven by poppler.

The PDF is rendered to PNG with ``pdftoppm`` (kept in ``tests/artifacts/``
to be looked at) and its text extracted with ``pdftotext``: the recipient's
address, the reference and both languages must be there, Arabic as Arabic
text (shaped, in logical order). The mailroom's routes run in a real
``intake web`` process: the partner API here, for keys created
``--read-all`` only (the letters hold every customer's address, and
"posted" publishes the proof), the staff page (staff session only) in
test_letters_page.py.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.acks.mailroom import Mailroom
from gateway.acks.routes import mailroom_errors
from gateway.lib.http.errors import ApiError
from gateway.lib.services import Services
from gateway.store.db import writing
from gateway.store.tables import AcknowledgementRow
from normalizer.contract import Channel, Customer
from tests.peers.acks import ack_events, ack_row, event_kinds, other_complaint
from tests.peers.browser import ARTIFACTS
from tests.peers.processes import IntakeProcesses
from tests.peers.webform import start_web

SENDER = Customer(
    name="Mohamed El Amrani",
    postal_address="12 rue des Orangers, appartement 4\nHay Riad\n10100 Rabat",
)
LETTER_TEXT = "Monsieur, je conteste les frais prélevés sur mon transfert du 2 novembre."


def pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "letter.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return done.stdout.decode("utf-8")


def test_a_letter_complaint_gets_a_printable_pdf_in_french_and_arabic(
    services: Services, tmp_path: Path
) -> None:
    complaint = other_complaint(services, Channel.LETTER, LETTER_TEXT, SENDER)

    row = Acknowledger(services).handle(complaint)
    pdf = services.store.blobs.get(str(row.document))
    text = pdf_text(pdf, tmp_path)
    subprocess.run(
        ["pdftoppm", "-r", "80", "-png", "-singlefile", str(tmp_path / "letter.pdf"), "letter"],
        cwd=tmp_path,
        check=True,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "letter.png", ARTIFACTS / "ack-letter.png")

    assert row.status == "queued"
    assert pdf.startswith(b"%PDF")
    assert "Mohamed El Amrani" in text and "10100 Rabat" in text
    assert f"Objet : accusé de réception de votre réclamation {complaint.reference}" in text
    assert "توصلنا بشكايتكم" in text
    assert "مصلحة الشكايات" in text
    assert (tmp_path / "letter.png").stat().st_size > 10_000


TAMAZIGHT_LETTERS = {
    "zgh-Tfng": "ⴰⵣⵓⵍ, ⵓⵔ ⴷ ⵍⴽⵉⵎⵏ ⵉⴷⵔⵉⵎⵏ ⵉ ⵜⵢⵢⵉ ⵢⵉⵎⵎⴰ ⵙⴳ ⵓⵙⵙⴰⵏ.",
    "ber-Latn": "Azul, ur d-wwiḍen ara yedrimen i d-cegɛeɣ i yemma. Acimi ur tessawaleḍ ara?",
}
TAMAZIGHT_REFERENCE = {"zgh-Tfng": "ⵓⵟⵟⵓⵏ ⵏⵏⵙ ⴷ {}", "ber-Latn": "Uṭṭun nnes d {}"}


@pytest.mark.parametrize("tag", ["zgh-Tfng", "ber-Latn"])
def test_a_tamazight_letter_complaint_gets_tamazight_first_then_french_and_arabic(
    services: Services, tmp_path: Path, tag: str
) -> None:
    complaint = other_complaint(services, Channel.LETTER, TAMAZIGHT_LETTERS[tag], SENDER)

    row = Acknowledger(services).handle(complaint)
    text = " ".join(pdf_text(services.store.blobs.get(str(row.document)), tmp_path).split())
    subprocess.run(  # the first page, for a reviewer of the Tamazight texts to look at
        ["pdftoppm", "-r", "80", "-png", "-singlefile", str(tmp_path / "letter.pdf"), "letter"],
        cwd=tmp_path,
        check=True,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "letter.png", ARTIFACTS / f"ack-letter-{tag}.png")

    assert complaint.language.tag == tag
    sentence = TAMAZIGHT_REFERENCE[tag].format(complaint.reference)
    french = f"Objet : accusé de réception de votre réclamation {complaint.reference}"
    assert sentence in text
    assert text.index(sentence) < text.index(french) < text.index("توصلنا بشكايتكم")
    assert text.count(complaint.reference) >= 12  # every mention, in every language
    assert "10100 Rabat" in text


def test_posting_a_tamazight_letter_publishes_its_texts_as_unreviewed(services: Services) -> None:
    complaint = other_complaint(services, Channel.LETTER, TAMAZIGHT_LETTERS["zgh-Tfng"], SENDER)
    row = Acknowledger(services).handle(complaint)

    Mailroom(services, Acknowledger(services)).mark_posted(row.id, datetime.now(UTC))

    [event] = ack_events(services, 1)
    assert event["data"]["details"]["languages"] == ["zgh-Tfng", "fr"]
    assert event["data"]["details"]["unreviewed_languages"] == ["zgh-Tfng"]


def test_a_name_that_is_not_plainly_a_name_stays_off_the_envelope(
    services: Services, tmp_path: Path
) -> None:
    # S5: a letter goes to an address typed on the form; the name line above it is
    # free text too, so a sentence with a link is not printed (the address is).
    phishing = Customer(
        name="URGENT carte suspendue: https://cashplus-verif.example",
        postal_address=SENDER.postal_address,
    )
    complaint = other_complaint(services, Channel.LETTER, LETTER_TEXT, phishing)

    row = Acknowledger(services).handle(complaint)
    text = pdf_text(services.store.blobs.get(str(row.document)), tmp_path)

    assert "10100 Rabat" in text and complaint.reference in text
    assert "cashplus-verif" not in text and "URGENT" not in text


def key_for(processes: IntakeProcesses, env: dict[str, str], *args: str) -> dict[str, str]:
    """The Authorization header of a new partner API key (``intake api-key create``)."""
    created = processes.run("api-key", "create", *args, env=env)
    return {"Authorization": f"Bearer {created.stdout().strip()}"}


def test_the_mailroom_lists_downloads_and_marks_the_letter_posted(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    complaint = other_complaint(services, Channel.LETTER, LETTER_TEXT, SENDER)
    row = Acknowledger(services).handle(complaint)
    web = start_web(intake_processes, settings)
    auth = key_for(intake_processes, web.env, "mailroom", "--read-all")

    with httpx.Client(base_url=web.url, headers=auth) as client:
        listed = client.get("/v1/acks/letters").json()
        pdf = client.get(f"/v1/acks/letters/{row.id}/pdf")
        posted = client.post(f"/v1/acks/letters/{row.id}/posted")
        again = client.post(f"/v1/acks/letters/{row.id}/posted")
        after = client.get("/v1/acks/letters").json()

    assert [item["reference"] for item in listed] == [complaint.reference]
    assert pdf.headers["content-type"] == "application/pdf"
    assert posted.json()["status"] == again.json()["status"] == "sent"
    assert after == []
    assert ack_row(services, complaint.id).sent_at is not None  # type: ignore[union-attr]
    [event] = ack_events(services, 1)
    assert event["type"] == "ma.cashplus.intake.ack.sent.v1"
    assert event["data"]["details"]["method"] == "letter"


def test_a_key_that_reads_only_its_own_complaints_sees_no_letters(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    complaint = other_complaint(services, Channel.LETTER, LETTER_TEXT, SENDER)
    row = Acknowledger(services).handle(complaint)
    web = start_web(intake_processes, settings)
    auth = key_for(intake_processes, web.env, "partner")

    with httpx.Client(base_url=web.url, headers=auth) as client:
        listed = client.get("/v1/acks/letters")
        pdf = client.get(f"/v1/acks/letters/{row.id}/pdf")
        posted = client.post(f"/v1/acks/letters/{row.id}/posted")

    assert [listed.status_code, pdf.status_code, posted.status_code] == [404, 404, 404]
    assert {r.json()["error"]["code"] for r in (listed, pdf, posted)} == {"not_found"}
    assert SENDER.name not in pdf.text
    assert ack_row(services, complaint.id).status == "queued"  # type: ignore[union-attr]
    assert event_kinds(services) == []  # no ack.sent for a letter nobody posted


def test_a_queued_letter_whose_complaint_cannot_be_loaded_is_not_marked_posted(
    services: Services,
) -> None:
    complaint = other_complaint(services, Channel.LETTER, LETTER_TEXT, SENDER)
    row = Acknowledger(services).handle(complaint)
    mailroom = Mailroom(services, Acknowledger(services, senders={}))
    with writing(services.store.engine) as session:  # its complaint, out of reach
        session.execute(
            update(AcknowledgementRow)
            .where(AcknowledgementRow.id == row.id)
            .values(reference="CP-0000-0000")
        )

    with pytest.raises(ApiError) as refused, mailroom_errors():
        mailroom.mark_posted(row.id, datetime.now(UTC))

    assert (refused.value.status, refused.value.code) == (500, "complaint_missing")
    assert "CP-0000-0000" in refused.value.message
    assert ack_row(services, complaint.id).status == "queued"  # type: ignore[union-attr]


def test_the_staff_page_letter_routes_refuse_a_partner_api_key(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    complaint = other_complaint(services, Channel.LETTER, LETTER_TEXT, SENDER)
    row = Acknowledger(services).handle(complaint)
    web = start_web(intake_processes, settings)
    auth = key_for(intake_processes, web.env, "mailroom", "--read-all")

    with httpx.Client(base_url=web.url, headers=auth) as client:
        listed = client.get("/letters/acks")
        pdf = client.get(f"/letters/acks/{row.id}/pdf")
        everything = client.get("/letters/acks/all.pdf")
        posted = client.post(f"/letters/acks/{row.id}/posted")

    assert [listed.status_code, pdf.status_code, everything.status_code] == [401, 401, 401]
    assert posted.status_code == 401
    assert ack_row(services, complaint.id).status == "queued"  # type: ignore[union-attr]


def test_the_letter_routes_need_an_api_key(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    web = start_web(intake_processes, settings)
    with httpx.Client(base_url=web.url) as client:
        assert client.get("/v1/acks/letters").status_code == 401
