"""An erasure request reaches every row and blob around a customer's complaints, on SQLite
and PostgreSQL: the letter's thumbnail and scan names, the call's transcript request, the
status report's note, the WhatsApp media row, the quarantined input, the customer-key
contact rows. After it nothing of theirs is left in any table or blob; counts, hashes and
``product`` stay; the evidence log verifies. An export finds the quarantined input too.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from config.settings import get_settings
from gateway.cli import main
from gateway.store import Store
from gateway.store.calls import KeepTranscript, Transcript
from gateway.store.cases import StatusReport
from gateway.store.db import reading, writing
from gateway.store.intake import IntakeResult
from gateway.store.letters import DONE, LetterOutcome, LetterRow
from gateway.store.media import NewMedia, mark_stored
from gateway.store.personal_data import Subject
from gateway.store.tables import (
    Base,
    CallRow,
    ComplaintContactRow,
    ComplaintRow,
    ComplaintStatusRow,
    CustomerPointRow,
    EvidenceLogRow,
    EvidenceRow,
    MediaRow,
    OutboxRow,
    QuarantineRow,
)
from gateway.store.tables import (
    LetterRow as LetterTable,
)
from normalizer.contract import Channel, Customer
from normalizer.draft import AttachmentDraft, ComplaintDraft, RawInput
from normalizer.pipeline import PipelineContext, normalize
from normalizer.triage import TriageKind, TriageVerdict

NOW = datetime.now(UTC)
PHONE, EMAIL, NAME = "+212661234567", "fatima.zahra@example.ma", "Fatima Zahra Bennani"
# Everything of hers that must be gone after the erasure, in rows and in blobs.
HERS = (
    "661234567",  # the number in any form (+212661234567, 0661234567)
    EMAIL,
    "Bennani",
    "colis-perdu-7731",  # the complaints' text
    "transcription-9912",  # what she said on the phone
    "note-rappel-4410",  # the status report's note
    "scan-courrier-bennani",  # the scan's file name
    "photo-recu-whatsapp",  # the WhatsApp media's name
    "ME5550aa",  # the media's URL
    "quarantaine-8820",  # the quarantined mail
    "triage-6630",  # a message sorted out as not a complaint (thanks), and its photo
)
THUMBNAIL = b"\x89PNG\r\n\x1a\n thumbnail of Fatima Zahra Bennani's letter"
OTHER_PHONE = "+212700000001"


def _record(
    store: Store,
    *,
    channel: Channel,
    days_ago: int = 60,
    phone: str | None = PHONE,
    email: str | None = EMAIL,
    name: str = NAME,
    body: str = "Mon transfert d'argent Western Union n'est jamais arrivé, colis-perdu-7731.",
    attachment: AttachmentDraft | None = None,
    source_ids: dict[str, Any] | None = None,
) -> IntakeResult:
    received = NOW - timedelta(days=days_ago)
    raw = RawInput(
        channel=channel,
        data=f"{body} {name} {phone} {email}".encode(),
        content_type="text/plain; charset=utf-8",
        received_at=received,
        dedup_key=f"test:{uuid.uuid4()}",
        source_ids=source_ids or {"upload_id": str(uuid.uuid4())},
    )
    draft = ComplaintDraft(
        channel=channel,
        received_at=received,
        body=body,
        customer=Customer(name=name, phone=phone, email=email, postal_address=f"12 rue {name}"),
        declared_language="fr",
    )
    if attachment is not None:
        draft.attachments.append(attachment)
    normalize(draft, PipelineContext())
    return store.complaints.record_complaint(raw, draft)


def _letter(store: Store) -> IntakeResult:
    scan = AttachmentDraft("scan-courrier-bennani.pdf", b"%PDF-1.4 scan of the letter")
    recorded = _record(store, channel=Channel.LETTER, attachment=scan)
    message = recorded.message
    store.letters.add(
        LetterRow(
            id=str(uuid.uuid4()),
            complaint_id=message.id,
            reference=message.reference,
            source="page",
            files=[
                {
                    "name": "scan-courrier-bennani.pdf",
                    "sha256": message.attachments[0].sha256,
                    "size": message.attachments[0].size,
                    "mime": "application/pdf",
                    "kind": "pdf",
                    "pages": 1,
                }
            ],
            pages=1,
        )
    )
    letter = store.letters.by_complaint(message.id)
    assert letter is not None
    read = message.model_copy(update={"body": f"Je soussignée {NAME}, colis-perdu-7731."})
    store.letters.complete(
        letter.id,
        LetterOutcome(
            DONE,
            read,
            result={"text": read.body},
            thumbnail=store.blobs.put(THUMBNAIL).location,
        ),
    )
    return recorded


def _call(store: Store) -> tuple[IntakeResult, str]:
    call_sid = f"CA{uuid.uuid4().hex}"
    store.calls().start(call_sid, account_sid="AC1", caller=PHONE, called="+212520020915")
    recorded = _record(
        store,
        channel=Channel.PHONE,
        body="transcription-9912: mon transfert n'est pas arrivé",
        source_ids={"call_sid": call_sid},
    )
    request = f"CallSid={call_sid}&From=%2B212661234567&TranscriptionText=transcription-9912"
    stored = store.blobs.put(request.encode())
    transcript = Transcript(
        text="transcription-9912: mon transfert n'est pas arrivé",
        sha256=hashlib.sha256(b"transcription-9912").hexdigest(),
        language="fr",
        confidence=0.9,
        source="twilio",
        evidence=stored.location,
    )
    with writing(store.engine) as session:
        KeepTranscript(call_sid, transcript)(session)
    return recorded, stored.sha256


def _call_without_complaint(store: Store) -> str:
    """A call that made no complaint (hung up after the transcription): its transcript
    request's blob is still hers."""
    call_sid = f"CA{uuid.uuid4().hex}"
    store.calls().start(call_sid, account_sid="AC1", caller=PHONE, called="+212520020915")
    stored = store.blobs.put(f"CallSid={call_sid}&TranscriptionText=Bennani rappel".encode())
    transcript = Transcript(
        text="Bennani rappel",
        sha256=hashlib.sha256(b"Bennani rappel").hexdigest(),
        language="fr",
        confidence=0.8,
        source="twilio",
        evidence=stored.location,
    )
    with writing(store.engine) as session:
        KeepTranscript(call_sid, transcript)(session)
    return stored.sha256


def _whatsapp(store: Store) -> IntakeResult:
    photo = AttachmentDraft("photo-recu-whatsapp.jpg", b"\xff\xd8\xff photo", "image/jpeg")
    recorded = _record(store, channel=Channel.WHATSAPP, email=None, attachment=photo, days_ago=45)
    with reading(store.engine) as session:
        key = session.scalar(
            select(ComplaintRow.dedup_key).where(ComplaintRow.id == recorded.message.id)
        )
    assert key is not None
    store.media.add(
        [
            NewMedia(
                media_key=f"message:MM{uuid.uuid4().hex}:0",
                complaint_key=key,
                position=0,
                url="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME5550aa",
                name="photo-recu-whatsapp.jpg",
                declared_type="image/jpeg",
            )
        ]
    )
    (task,) = store.media.claim_due(10, timedelta(minutes=5))
    with writing(store.engine) as session:
        mark_stored(task.id, recorded.message.attachments[0])(session)
    return recorded


def _quarantined_mail(store: Store) -> str:
    """A mail the parser refused: her address in From, her number only in a base64 part."""
    head = (
        f"From: {NAME} <{EMAIL}>\r\nTo: contact@cashplus.ma\r\n"
        "Subject: quarantaine-8820\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    body = base64.encodebytes(b"rappelez-moi au 06 61 23 45 67")
    return store.complaints.quarantine(
        channel="email",
        data=head.encode() + body,
        content_type="message/rfc822",
        reason_code="unparseable",
        reason="the parser refused it",
    )


def _thanks(store: Store) -> str:
    """An SMS the triage sorted out as thanks, with a photo: an event and a triage row."""
    received = NOW - timedelta(days=30)
    raw = RawInput(
        channel=Channel.SMS,
        data=f"From={PHONE}&Body=merci triage-6630".encode(),
        content_type="application/x-www-form-urlencoded",
        received_at=received,
        dedup_key=f"test:{uuid.uuid4()}",
    )
    draft = ComplaintDraft(
        channel=Channel.SMS,
        received_at=received,
        body="Merci beaucoup, triage-6630",
        customer=Customer(phone=PHONE),
        declared_language="fr",
        triage=TriageVerdict(TriageKind.THANKS, "rules", ("merci",)),
    )
    draft.attachments.append(AttachmentDraft("triage-6630.jpg", b"\xff\xd8\xff triage-6630"))
    normalize(draft, PipelineContext())
    recorded = store.triage.record(raw, draft)
    assert recorded.message.triage is not None and recorded.message.triage.kind == "thanks"
    return recorded.message.attachments[0].sha256


def _everything_of(store: Store) -> dict[str, list[str]]:
    """Every table's rows and every blob, as text: where each needle of ``HERS`` is found."""
    found: dict[str, list[str]] = {}
    with reading(store.engine) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                text = " ".join(
                    value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    for value in row
                )
                for needle in HERS:
                    if needle.lower() in text.lower():
                        found.setdefault(needle, []).append(table.name)
    for path in store.blobs.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in HERS:
                if needle.lower().encode() in data.lower():
                    found.setdefault(needle, []).append(f"blob {path.name}")
    return found


def _counts(store: Store) -> dict[str, int]:
    tables = (
        ComplaintRow,
        EvidenceRow,
        OutboxRow,
        LetterTable,
        CallRow,
        MediaRow,
        ComplaintStatusRow,
        QuarantineRow,
    )
    with reading(store.engine) as session:
        return {
            table.__tablename__: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in tables
        }


def _cli(store: Store, data_dir: Path, *args: str) -> Result:
    env = {"INTAKE_DATA_DIR": str(data_dir)}
    if store.engine.dialect.name == "postgresql":
        env["INTAKE_DATABASE_URL"] = store.engine.url.render_as_string(hide_password=False)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args), env=env)
    finally:
        get_settings.cache_clear()


@pytest.fixture
def her_data(store: Store) -> dict[str, Any]:
    """One customer known by every path the gateway has, and one other customer."""
    letter = _letter(store)
    call, transcript = _call(store)
    hung_up = _call_without_complaint(store)
    mail = _record(store, channel=Channel.API, days_ago=90)
    store.cases.report(
        mail.message.reference,
        StatusReport(
            status="answered",
            at=NOW - timedelta(days=50),
            note="note-rappel-4410: rappelée au 0661234567",
        ),
        source="api",
        actor="crm",
    )
    whatsapp = _whatsapp(store)
    quarantined = _quarantined_mail(store)
    thanks = _thanks(store)
    other = _record(
        store,
        channel=Channel.API,
        phone=OTHER_PHONE,
        email="ali@example.ma",
        name="Ali Alaoui",
        body="autre",
    )
    return {
        "complaints": [letter, call, mail, whatsapp],
        "transcript": transcript,
        "hung_up_transcript": hung_up,
        "quarantined": quarantined,
        "thanks_photo": thanks,
        "other": other,
    }


def test_everything_of_hers_is_there_before_the_erasure(
    store: Store, her_data: dict[str, Any]
) -> None:
    """The scene is what the erasure test claims it is: each needle is somewhere."""
    found = _everything_of(store)

    assert set(found) == set(HERS), set(HERS) - set(found)
    with reading(store.engine) as session:
        contacts = session.scalar(select(func.count()).select_from(ComplaintContactRow))
    assert contacts and contacts >= 5


def test_an_erasure_leaves_nothing_of_hers_keeps_counts_hashes_and_product(
    store: Store, data_dir: Path, her_data: dict[str, Any]
) -> None:
    complaints: list[IntakeResult] = her_data["complaints"]
    before = _counts(store)
    stored = {
        item.message.reference: store.complaints.get_by_reference(item.message.reference)
        for item in complaints
    }
    with reading(store.engine) as session:
        her_ids = [item.message.id for item in complaints]
        points = session.scalar(select(func.count()).select_from(CustomerPointRow))

    result = _cli(store, data_dir, "personal-data", "erase", "--phone", "0661234567", "--yes")

    assert result.exit_code == 0, result.output
    assert "1 quarantined input(s)" in result.output
    assert _everything_of(store) == {}
    assert _counts(store) == before
    for reference, was in stored.items():
        kept = store.complaints.get_by_reference(reference)
        assert kept is not None and was is not None
        assert kept.evidence.sha256 == was.evidence.sha256
        assert [a.sha256 for a in kept.attachments] == [a.sha256 for a in was.attachments]
        assert [a.size for a in kept.attachments] == [a.size for a in was.attachments]
        assert kept.product == was.product  # the register's month stays as reported
        assert kept.product_detection is None or kept.product_detection.matched == []
        assert (kept.received_at, kept.answer_due_at) == (was.received_at, was.answer_due_at)
    mail = stored[complaints[2].message.reference]
    assert mail is not None and mail.product == "money_transfer"
    assert mail.product_detection is not None and mail.product_detection.matched
    assert not store.blobs.exists(her_data["transcript"])
    assert not store.blobs.exists(her_data["hung_up_transcript"])
    assert not store.blobs.exists(her_data["thanks_photo"])
    with reading(store.engine) as session:
        assert not session.scalar(
            select(func.count())
            .select_from(ComplaintContactRow)
            .where(ComplaintContactRow.complaint_id.in_(her_ids))
        )
        # Only the other customer's points are left (a phone and an e-mail).
        assert (
            session.scalar(select(func.count()).select_from(CustomerPointRow)) == 2 < (points or 0)
        )
        calls = session.scalars(select(CallRow)).all()
        assert len(calls) == 2
        assert all(c.transcript_sha256 and c.transcript_evidence is None for c in calls)
        letter = session.execute(select(LetterTable)).one()[0]
        assert letter.thumbnail is None and letter.files[0]["sha256"]
        roles = [
            ids.get("role")
            for ids in session.scalars(
                select(EvidenceLogRow.source_ids).where(EvidenceLogRow.kind == "removed")
            )
        ]
        quarantined = session.get(QuarantineRow, her_data["quarantined"])
        assert quarantined is not None
        assert quarantined.kept_bytes == 0 and quarantined.resolved_at is not None
    assert {"thumbnail", "transcript", "attachment"} <= set(roles)
    other = her_data["other"].message
    assert store.complaints.get_by_reference(other.reference) == other
    verification = store.evidence.verify()
    assert verification.whole, [b.line() for b in verification.broken]
    verify = _cli(store, data_dir, "evidence", "verify")
    assert verify.exit_code == 0, verify.output


def test_an_erasure_by_e_mail_finds_the_quarantined_mail_too(
    store: Store, data_dir: Path, her_data: dict[str, Any]
) -> None:
    result = _cli(store, data_dir, "personal-data", "erase", "--email", EMAIL, "--yes")

    assert result.exit_code == 0, result.output
    item = store.quarantine.get(her_data["quarantined"])
    assert item is not None and item.kept_bytes == 0 and not store.blobs.exists(item.stored_at)


def test_an_export_holds_the_quarantined_input_and_the_sorted_out_message(
    store: Store, data_dir: Path, tmp_path: Path, her_data: dict[str, Any]
) -> None:
    out = tmp_path / "export.zip"

    result = _cli(store, data_dir, "personal-data", "export", "--phone", PHONE, "--out", str(out))

    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        quarantined = json.loads(archive.read("quarantine.json"))
        item = store.quarantine.get(her_data["quarantined"])
        assert item is not None
        mail = archive.read(f"blobs/{item.sha256}")
        complaints = json.loads(archive.read("complaints.json"))
        events = json.loads(archive.read("events.json"))
        names = set(archive.namelist())
    assert f"blobs/{her_data['thanks_photo']}" in names
    assert [e["would_be_complaint"]["body"] for e in events] == ["Merci beaucoup, triage-6630"]
    assert [entry["id"] for entry in quarantined] == [her_data["quarantined"]]
    assert b"06 61 23 45 67" not in mail  # the raw mail as received: its number in base64
    assert mail == store.blobs.get(item.stored_at)
    assert len(complaints) == len(her_data["complaints"])
    assert her_data["other"].message.reference not in {c["reference"] for c in complaints}


def test_a_quarantined_input_of_someone_else_is_not_hers(store: Store) -> None:
    other = store.complaints.quarantine(
        channel="webform",
        data=b"name=Ali&phone=0700000001&email=ali%40example.ma",
        content_type="application/x-www-form-urlencoded",
        reason_code="invalid_field",
        reason="invalid",
    )
    mine = store.complaints.quarantine(
        channel="webform",
        data=b"name=Fatima&phone=%2B212661234567",
        content_type="application/x-www-form-urlencoded",
        reason_code="invalid_field",
        reason="invalid",
    )
    held = store.personal_data.find(Subject(phone=PHONE))

    assert [item["id"] for item in held.quarantined] == [mine]
    assert other not in {item["id"] for item in held.quarantined}


def test_a_second_erasure_finds_nothing_left(
    store: Store, data_dir: Path, her_data: dict[str, Any]
) -> None:
    first = _cli(store, data_dir, "personal-data", "erase", "--phone", PHONE, "--yes")
    assert first.exit_code == 0, first.output

    again = _cli(store, data_dir, "personal-data", "erase", "--phone", PHONE, "--yes")

    assert again.exit_code == 1 and "nothing held" in again.output
