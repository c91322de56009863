"""Retention purge and a customer's access and erasure requests, on the store and the blob
store, SQLite and PostgreSQL: a dry run changes nothing (read-only store, no migration, no
file); a purge removes exactly what is past the policy, in batches, never a complaint within
its answer period or reported open, and the evidence log still verifies; an erasure removes
one customer's content only, keeps counts and hashes; an export holds that customer's data
only. The rows around a complaint: ``test_personal_data_erase.py``.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from config.settings import get_settings, load_settings
from gateway.cli import main
from gateway.store import Store, open_store
from gateway.store.cases import StatusReport
from gateway.store.customers import SECRET_FILE
from gateway.store.db import alembic_config, create_store_engine, reading, writing
from gateway.store.intake import IntakeResult
from gateway.store.retention import ATTACHMENT, RAW, RECORDING, REFUSED, Policy
from gateway.store.tables import (
    ComplaintRow,
    EventRow,
    EvidenceLogRow,
    EvidenceRow,
    OutboxRow,
    QuarantineRow,
)
from normalizer.contract import Channel, ComplaintMessage, Customer
from normalizer.draft import AttachmentDraft, ComplaintDraft, RawInput
from normalizer.pipeline import PipelineContext, normalize

NOW = datetime.now(UTC)
POLICY = Policy({RAW: 1826, RECORDING: 730, "letter": 1826, ATTACHMENT: 1826, REFUSED: 90})


def _record(
    store: Store,
    *,
    days_ago: int,
    channel: Channel = Channel.API,
    phone: str | None = "+212612345678",
    email: str | None = None,
    body: str | None = None,
    attachment: bytes | None = None,
) -> IntakeResult:
    received = NOW - timedelta(days=days_ago)
    text = body or f"Réclamation {uuid.uuid4()}: mon transfert n'est pas arrivé."
    raw = RawInput(
        channel=channel,
        data=f"{text} {phone} {email}".encode(),
        content_type="text/plain; charset=utf-8",
        received_at=received,
        dedup_key=f"test:{uuid.uuid4()}",
        source_ids={"upload_id": str(uuid.uuid4())},
    )
    draft = ComplaintDraft(
        channel=channel,
        received_at=received,
        body=text,
        customer=Customer(name="Fatima Zahra", phone=phone, email=email),
        declared_language="fr",
    )
    if attachment is not None:
        draft.attachments.append(AttachmentDraft("releve.pdf", attachment, "application/pdf"))
    normalize(draft, PipelineContext())
    return store.complaints.record_complaint(raw, draft)


def _message(store: Store, reference: str) -> ComplaintMessage:
    found = store.complaints.get_by_reference(reference)
    assert found is not None
    return found


def _snapshot(store: Store) -> tuple[list[str], list[bytes], int, list[str]]:
    with reading(store.engine) as session:
        messages = list(session.scalars(select(ComplaintRow.message).order_by(ComplaintRow.id)))
        payloads = list(session.scalars(select(OutboxRow.payload).order_by(OutboxRow.id)))
        entries = int(session.scalar(select(func.count()).select_from(EvidenceLogRow)) or 0)
    files = sorted(p.name for p in store.blobs.root.rglob("*") if p.is_file())
    return messages, payloads, entries, files


def _quarantine_refused(store: Store, days_ago: int) -> str:
    item_id = store.complaints.quarantine(
        channel="webform",
        data=f"name=Fatima&phone=0612345678&n={uuid.uuid4()}".encode(),
        content_type="application/x-www-form-urlencoded",
        reason_code="invalid_field",
        reason="phone: not a phone number",
        head_only=True,
    )
    with writing(store.engine) as session:
        session.execute(
            update(QuarantineRow)
            .where(QuarantineRow.id == item_id)
            .values(created_at=NOW - timedelta(days=days_ago))
        )
    return item_id


def test_a_dry_run_changes_nothing(store: Store) -> None:
    _record(store, days_ago=2500)
    _record(store, days_ago=800, channel=Channel.PHONE)
    before = _snapshot(store)
    retention = store.retention(POLICY)

    due, _kept = retention.due()

    assert {item.kind for item in due} == {RAW, RECORDING}
    assert _snapshot(store) == before


def test_purge_removes_exactly_what_is_past_the_policy_and_verify_passes(store: Store) -> None:
    old_mail = _record(store, days_ago=2500, attachment=b"%PDF-1.4 old statement")
    new_mail = _record(store, days_ago=30, attachment=b"%PDF-1.4 new statement")
    old_call = _record(store, days_ago=800, channel=Channel.PHONE)
    new_call = _record(store, days_ago=100, channel=Channel.PHONE)
    refused = _quarantine_refused(store, days_ago=120)
    recent_refusal = _quarantine_refused(store, days_ago=10)

    retention = store.retention(POLICY)
    due, _kept = retention.due()
    summary = retention.purge(due)

    assert summary.kinds[RAW].items == 1 and summary.kinds[RECORDING].items == 1
    assert summary.kinds[REFUSED].items >= 1
    for gone in (old_mail, old_call):
        message = _message(store, gone.message.reference)
        assert message.body == "" and message.customer.phone is None
        assert message.customer.name is None
        assert message.evidence.sha256 == gone.message.evidence.sha256  # the hash is kept
        assert not store.blobs.exists(gone.message.evidence.sha256)
    assert not store.blobs.exists(old_mail.message.attachments[0].sha256)
    purged_attachment = _message(store, old_mail.message.reference).attachments[0]
    assert purged_attachment.size == len(b"%PDF-1.4 old statement")
    assert purged_attachment.sha256 == old_mail.message.attachments[0].sha256
    for kept in (new_mail, new_call):
        assert _message(store, kept.message.reference) == kept.message
        assert store.blobs.exists(kept.message.evidence.sha256)
    assert store.blobs.exists(new_mail.message.attachments[0].sha256)
    item, recent = store.quarantine.get(refused), store.quarantine.get(recent_refusal)
    assert item is not None and item.kept_bytes == 0 and not store.blobs.exists(item.stored_at)
    assert recent is not None and store.blobs.exists(recent.stored_at)

    verification = store.evidence.verify()
    assert verification.whole, [b.line() for b in verification.broken]
    assert verification.removed == 2 and verification.removals >= 4
    # A second purge finds nothing more to do.
    assert retention.due()[0] == []


def test_the_outbox_keeps_no_content_of_a_purged_complaint(store: Store) -> None:
    old = _record(store, days_ago=2500, body="ma carte est bloquée, CIN BE123456")
    retention = store.retention(POLICY)

    retention.purge(retention.due()[0])

    with reading(store.engine) as session:
        payload = session.scalar(
            select(OutboxRow.payload).where(OutboxRow.complaint_id == old.message.id)
        )
    assert payload is not None and b"BE123456" not in payload and b"+212612345678" not in payload
    assert json.loads(payload)["data"]["reference"] == old.message.reference


def test_a_missing_blob_without_a_removal_is_still_named(store: Store) -> None:
    kept = _record(store, days_ago=5)
    store.blobs.remove(kept.message.evidence.sha256)

    broken = store.evidence.verify().broken

    assert [(b.problem, b.reference) for b in broken] == [("blob missing", kept.message.reference)]


def _cli(store: Store, data_dir: Path, *args: str) -> Result:
    env = {"INTAKE_DATA_DIR": str(data_dir)}
    if store.engine.dialect.name == "postgresql":
        env["INTAKE_DATABASE_URL"] = store.engine.url.render_as_string(hide_password=False)
    get_settings.cache_clear()  # the process's settings are read once: read this test's
    try:
        return CliRunner().invoke(main, list(args), env=env)
    finally:
        get_settings.cache_clear()


def test_erase_removes_one_customers_content_only_and_verify_passes(
    store: Store, data_dir: Path
) -> None:
    hers = [
        _record(store, days_ago=200, phone="+212661234567", attachment=b"%PDF her scan"),
        _record(store, days_ago=100, phone="+212661234567"),
    ]
    other = _record(store, days_ago=200, phone="+212700000001", email="Ali@Example.ma")
    with reading(store.engine) as session:
        counts = (
            session.scalar(select(func.count()).select_from(ComplaintRow)),
            session.scalar(select(func.count()).select_from(EvidenceRow)),
            session.scalar(select(func.count()).select_from(OutboxRow)),
        )

    result = _cli(store, data_dir, "personal-data", "erase", "--phone", "0661234567", "--yes")

    assert result.exit_code == 0, result.output
    for item in hers:
        message = _message(store, item.message.reference)
        assert message.customer.phone is None and message.body == ""
        assert message.received_at == item.message.received_at
        assert message.answer_due_at == item.message.answer_due_at
        assert message.evidence.sha256 == item.message.evidence.sha256
        assert not store.blobs.exists(item.message.evidence.sha256)
    assert not store.blobs.exists(hers[0].message.attachments[0].sha256)
    assert _message(store, other.message.reference) == other.message
    assert store.blobs.exists(other.message.evidence.sha256)
    with reading(store.engine) as session:
        assert counts == (
            session.scalar(select(func.count()).select_from(ComplaintRow)),
            session.scalar(select(func.count()).select_from(EvidenceRow)),
            session.scalar(select(func.count()).select_from(OutboxRow)),
        )
        reasons = set(
            session.scalars(select(EvidenceLogRow.reason).where(EvidenceLogRow.kind == "removed"))
        )
    assert reasons == {"erasure"}
    verification = store.evidence.verify()
    assert verification.whole, [b.line() for b in verification.broken]
    assert verification.removed == 2


def test_erase_refuses_a_complaint_still_open_without_force(store: Store, data_dir: Path) -> None:
    recent = _record(store, days_ago=3, email="fatima@example.ma")

    refused = _cli(
        store, data_dir, "personal-data", "erase", "--email", "Fatima@Example.MA", "--yes"
    )

    assert refused.exit_code == 1 and recent.message.reference in refused.output
    assert _message(store, recent.message.reference) == recent.message
    forced = _cli(
        store,
        data_dir,
        "personal-data",
        "erase",
        "--email",
        "fatima@example.ma",
        "--yes",
        "--force",
    )
    assert forced.exit_code == 0, forced.output
    assert _message(store, recent.message.reference).customer.email is None


def test_export_holds_that_customers_data_only(
    store: Store, data_dir: Path, tmp_path: Path
) -> None:
    hers = _record(store, days_ago=20, email="Fatima@Example.ma", attachment=b"%PDF her statement")
    other = _record(store, days_ago=20, email="ali@example.ma", phone="+212700000001")
    out = tmp_path / "export.zip"

    result = _cli(
        store,
        data_dir,
        "personal-data",
        "export",
        "--email",
        "fatima@example.ma",
        "--out",
        str(out),
    )

    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        names = set(archive.namelist())
        complaints = json.loads(archive.read("complaints.json"))
        raw = archive.read(f"blobs/{hers.message.evidence.sha256}")
        scan = archive.read(f"blobs/{hers.message.attachments[0].sha256}")
    assert [c["reference"] for c in complaints] == [hers.message.reference]
    assert complaints[0]["complaint"]["customer"]["email"].lower() == "fatima@example.ma"
    assert raw == store.blobs.get(hers.message.evidence.sha256) and scan == b"%PDF her statement"
    assert f"blobs/{other.message.evidence.sha256}" not in names
    assert {"README.txt", "subject.json", "acknowledgements.json", "calls.json"} <= names


def test_the_purge_command_dry_run_lists_and_the_real_run_summarizes_per_kind(
    store: Store, data_dir: Path
) -> None:
    old = _record(store, days_ago=2500)
    before = _snapshot(store)

    dry = _cli(store, data_dir, "retention", "purge", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert f"due\traw\t{old.message.reference}" in dry.output
    assert _snapshot(store) == before
    unconfirmed = _cli(store, data_dir, "retention", "purge")
    assert unconfirmed.exit_code == 2, unconfirmed.output
    assert _snapshot(store) == before
    real = _cli(store, data_dir, "retention", "purge", "--yes")
    assert real.exit_code == 0, real.output
    assert "raw\t1 item(s)\t1 blob(s)" in real.output
    assert not store.blobs.exists(old.message.evidence.sha256)
    verify = _cli(store, data_dir, "evidence", "verify")
    assert verify.exit_code == 0, verify.output


def test_an_erasure_with_a_number_that_is_not_one_is_a_usage_error(
    store: Store, data_dir: Path
) -> None:
    result = _cli(store, data_dir, "personal-data", "erase", "--phone", "12", "--yes")

    assert result.exit_code == 64


def _missed_call(store: Store, days_ago: int, caller: str) -> str:
    raw = RawInput(
        channel=Channel.PHONE,
        data=f"CallSid=CA{uuid.uuid4().hex}&From={caller}&CallStatus=no-answer".encode(),
        content_type="application/x-www-form-urlencoded",
        received_at=NOW - timedelta(days=days_ago),
        dedup_key=f"test:missed:{uuid.uuid4()}",
    )
    event, _created = store.complaints.record_event(raw, "call.missed", {"caller": caller})
    return event.id


def _event_payload(store: Store, event_id: str) -> dict[str, object]:
    with reading(store.engine) as session:
        payload = session.scalar(select(EventRow.payload).where(EventRow.id == event_id))
    assert payload is not None
    return dict(json.loads(payload))


def test_purge_and_erasure_reach_intake_events_and_verify_passes(
    store: Store, data_dir: Path, tmp_path: Path
) -> None:
    old = _missed_call(store, days_ago=800, caller="+212661234567")
    recent = _missed_call(store, days_ago=5, caller="+212661234567")
    other = _missed_call(store, days_ago=5, caller="+212700000001")
    retention = store.retention(POLICY)

    summary = retention.purge(retention.due()[0])

    assert summary.kinds[RECORDING].items == 1
    assert _event_payload(store, old)["details"] == {}
    assert _event_payload(store, recent)["details"] == {"caller": "+212661234567"}
    out = tmp_path / "export.zip"
    exported = _cli(
        store, data_dir, "personal-data", "export", "--phone", "+212661234567", "--out", str(out)
    )
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(out) as archive:
        events = json.loads(archive.read("events.json"))
    assert [event["id"] for event in events] == [recent]
    erased = _cli(store, data_dir, "personal-data", "erase", "--phone", "+212661234567", "--yes")
    assert erased.exit_code == 0, erased.output
    assert _event_payload(store, recent)["details"] == {}
    assert _event_payload(store, other)["details"] == {"caller": "+212700000001"}
    verification = store.evidence.verify()
    assert verification.whole, [b.line() for b in verification.broken]
    assert verification.removed == 2


def _report(store: Store, reference: str, status: str, days_ago: int, **more: Any) -> None:
    store.cases.report(
        reference,
        StatusReport(status=status, at=NOW - timedelta(days=days_ago), **more),
        source="api",
        actor="crm",
    )


def test_a_recording_kept_fewer_days_than_the_answer_period_waits_for_the_answer(
    store: Store,
) -> None:
    short = Policy({**POLICY.days, RECORDING: 10})
    unanswered = _record(store, days_ago=20, channel=Channel.PHONE)
    answered_early = _record(store, days_ago=20, channel=Channel.PHONE)
    _report(store, answered_early.message.reference, "answered", days_ago=15)
    past_deadline = _record(store, days_ago=60, channel=Channel.PHONE)
    still_handled = _record(store, days_ago=60, channel=Channel.PHONE)
    _report(store, still_handled.message.reference, "in_progress", days_ago=50)
    extended = _record(store, days_ago=60, channel=Channel.PHONE)
    _report(
        store,
        extended.message.reference,
        "extended",
        days_ago=30,
        answer_due_at=NOW + timedelta(days=10),
        reason="investigation",
    )
    retention = store.retention(short)

    due, kept_open = retention.due()
    retention.purge(due)

    assert [item.reference for item in due] == [past_deadline.message.reference]
    assert kept_open == 4
    for kept in (unanswered, answered_early, still_handled, extended):
        assert _message(store, kept.message.reference).body == kept.message.body
        assert store.blobs.exists(kept.message.evidence.sha256)
    assert _message(store, past_deadline.message.reference).body == ""


def test_a_purge_in_batches_removes_every_item_and_reports_progress_per_batch(
    store: Store,
) -> None:
    old = [_record(store, days_ago=2500) for _ in range(5)]
    retention = store.retention(POLICY)
    progress: list[tuple[int, int]] = []

    summary = retention.purge(
        retention.due()[0], lambda done, total: progress.append((done, total)), batch=2
    )

    assert summary.kinds[RAW].items == 5 and summary.files_deleted == 5
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert all(not store.blobs.exists(item.message.evidence.sha256) for item in old)
    assert store.evidence.verify().whole


def test_a_store_opened_read_only_refuses_every_write(store: Store, data_dir: Path) -> None:
    overrides: dict[str, object] = {"data_dir": data_dir}
    if store.engine.dialect.name == "postgresql":
        overrides["database_url"] = store.engine.url.render_as_string(hide_password=False)
    reader = open_store(load_settings(**overrides), read_only=True)
    try:
        with pytest.raises(DBAPIError), writing(reader.engine) as session:
            session.execute(update(QuarantineRow).values(reason="changed"))
        assert reader.retention(POLICY).due() == ([], 0)  # reads work
    finally:
        reader.close()


def test_the_dry_run_makes_no_file_and_reads_only(store: Store, data_dir: Path) -> None:
    old = _record(store, days_ago=2500)
    secret = data_dir / SECRET_FILE
    secret.unlink()  # the store made it; a dry run must not make it again
    before = _snapshot(store)

    dry = _cli(store, data_dir, "retention", "purge", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert f"due\traw\t{old.message.reference}" in dry.output
    assert not secret.exists()
    assert _snapshot(store) == before


@pytest.fixture(params=["sqlite", "postgres"])
def old_store(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[tuple[Path, str | None]]:
    """A store whose schema stopped at revision 0015 (before case handling and triage)."""
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    settings = load_settings(data_dir=data_dir, **({"database_url": url} if url else {}))
    engine = create_store_engine(settings.resolved_database_url)
    command.upgrade(alembic_config(engine), "0015")
    engine.dispose()
    yield data_dir, url


def _revisions(data_dir: Path, url: str | None) -> set[str]:
    settings = load_settings(data_dir=data_dir, **({"database_url": url} if url else {}))
    engine = create_store_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def test_a_dry_run_on_an_older_store_refuses_and_leaves_its_schema_as_it_was(
    old_store: tuple[Path, str | None],
) -> None:
    data_dir, url = old_store
    env = {"INTAKE_DATA_DIR": str(data_dir), **({"INTAKE_DATABASE_URL": url} if url else {})}
    get_settings.cache_clear()
    try:
        dry = CliRunner().invoke(main, ["retention", "purge", "--dry-run"], env=env)
    finally:
        get_settings.cache_clear()

    assert dry.exit_code == 78, dry.output
    assert "intake migrate" in dry.output
    assert _revisions(data_dir, url) == {"0015"}
    assert not (data_dir / SECRET_FILE).exists()
