"""The append-only evidence log: a fresh store verifies; a changed blob and a removed entry
are named; blobs are read-only and checked on read; concurrent writers keep one chain;
the daily root reaches the events queue once.
"""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from config.settings import Settings
from gateway.lib.services import Services
from gateway.store import Store
from gateway.store.blobs import BlobChanged
from gateway.store.db import committing, writing
from gateway.store.redaction import redact_complaint, unlink_removed
from gateway.store.tables import Base, ComplaintRow, EvidenceLogRow, EvidenceRow
from router.relay import build_relay
from tests.peers.complaints import complaint_input, record
from tests.peers.processes import IntakeProcesses, env_for
from tests.peers.queues import drain


def _flip_one_byte(store: Store, sha256: str) -> None:
    path = store.blobs.path_for(sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_fresh_store_verifies(store: Store) -> None:
    for number in range(3):
        record(store, dedup_key=f"api:k{number}")

    result = store.evidence.verify()

    assert result.whole, [b.line() for b in result.broken]
    assert (result.entries, result.last_sequence) == (3, 3)


def test_a_changed_blob_and_a_removed_entry_are_both_named(store: Store) -> None:
    results = [record(store, dedup_key=f"api:t{number}") for number in range(4)]
    changed, removed = results[1].message, results[2].message
    _flip_one_byte(store, changed.evidence.sha256)
    with writing(store.engine) as session:
        sequence = session.scalar(
            select(EvidenceLogRow.sequence).where(EvidenceLogRow.sha256 == removed.evidence.sha256)
        )
        session.execute(delete(EvidenceLogRow).where(EvidenceLogRow.sequence == sequence))

    broken = store.evidence.verify().broken

    named = {(b.problem, b.reference, b.sha256) for b in broken}
    assert ("blob changed", changed.reference, changed.evidence.sha256) in named
    assert ("entry missing", removed.reference, removed.evidence.sha256) in named
    assert ("entry missing", sequence) in {(b.problem, b.sequence) for b in broken}


def test_an_erasure_excuses_only_its_own_entry_not_another_input_with_the_same_bytes(
    store: Store,
) -> None:
    """Blobs are stored by content: erasing one of two identical inputs keeps the blob, and
    the blob deleted by hand afterwards is still named for the other."""
    body = "Réclamation: mon transfert CP-2026 n'est jamais arrivé."
    first, second = (
        store.complaints.record_complaint(*complaint_input(body=body, dedup_key=f"api:same{n}"))
        for n in range(2)
    )
    assert first.message.evidence.sha256 == second.message.evidence.sha256
    with committing(store.engine) as connection:
        redacted = redact_complaint(connection, first.message.id, "erasure")
    with committing(store.engine) as connection:
        assert unlink_removed(connection, store.blobs, redacted.blobs) == 0  # still needed
    assert store.evidence.verify().whole

    path = store.blobs.path_for(second.message.evidence.sha256)
    path.chmod(0o644)
    path.unlink()
    broken = store.evidence.verify().broken

    assert [(b.problem, b.reference) for b in broken] == [
        ("blob missing", second.message.reference)
    ]


def test_an_evidence_row_deleted_by_hand_is_named(store: Store) -> None:
    kept, deleted = (record(store, dedup_key=f"api:row{n}") for n in range(2))
    with writing(store.engine) as session:  # the complaint's rows, then its evidence row
        for table in reversed(Base.metadata.sorted_tables):
            if "complaint_id" in table.c:
                session.execute(delete(table).where(table.c.complaint_id == deleted.message.id))
        session.execute(delete(ComplaintRow).where(ComplaintRow.id == deleted.message.id))
        session.execute(
            delete(EvidenceRow).where(EvidenceRow.sha256 == deleted.message.evidence.sha256)
        )

    broken = store.evidence.verify().broken

    assert [(b.problem, b.sha256) for b in broken] == [
        ("row missing", deleted.message.evidence.sha256)
    ]
    assert kept.message.evidence.sha256 not in {b.sha256 for b in broken}


def test_a_changed_entry_is_named(store: Store) -> None:
    result = record(store, dedup_key="api:e1")
    with writing(store.engine) as session:
        session.execute(
            update(EvidenceLogRow).values(received_at=datetime.now(UTC) - timedelta(days=3))
        )

    broken = store.evidence.verify().broken

    assert [(b.problem, b.reference) for b in broken] == [
        ("entry changed", result.message.reference)
    ]


def test_blobs_are_read_only_and_a_changed_one_refuses_to_be_read(store: Store) -> None:
    message = record(store, dedup_key="api:r1").message
    path = store.blobs.path_for(message.evidence.sha256)

    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.blobs.get(message.evidence.stored_at)  # whole: read as ever
    _flip_one_byte(store, message.evidence.sha256)
    with pytest.raises(BlobChanged, match=message.evidence.sha256):
        store.blobs.get(message.evidence.stored_at)


def test_quarantined_heads_are_still_read(store: Store) -> None:
    item_id = store.complaints.quarantine(
        channel="webform",
        data=b"x" * 5000,
        content_type="text/plain",
        reason_code="bad_field",
        reason="test",
        head_only=True,
    )
    item = store.quarantine.get(item_id)
    assert item is not None

    assert store.blobs.get(item.stored_at) == b"x" * min(5000, store.complaints.refused_head_bytes)


def test_concurrent_writers_keep_one_unbroken_chain(store: Store) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: record(store, dedup_key=f"api:c{n}"), range(40)))

    result = store.evidence.verify()

    assert result.whole, [b.line() for b in result.broken]
    assert (result.entries, result.last_sequence) == (40, 40)


def test_verify_from_the_shell_exits_0_then_65_naming_the_blob(
    intake_processes: IntakeProcesses, services: Services, settings: Settings
) -> None:
    message = record(services.store, dedup_key="api:s1").message

    whole = intake_processes.run("evidence", "verify", env=env_for(settings))
    assert whole.wait() == 0, whole.describe()

    _flip_one_byte(services.store, message.evidence.sha256)
    broken = intake_processes.run("evidence", "verify", env=env_for(settings))
    assert broken.wait() == 65, broken.describe()
    assert message.reference in broken.stdout()
    assert message.evidence.sha256 in broken.stdout()
    assert "blob changed" in broken.stdout()


def test_the_daily_root_is_published_once(services: Services, settings: Settings) -> None:
    store = services.store
    record(store, dedup_key="api:d1")
    with writing(store.engine) as session:  # appended two days ago
        session.execute(
            update(EvidenceLogRow).values(appended_at=datetime.now(UTC) - timedelta(days=2))
        )
        last = session.scalar(select(EvidenceLogRow.entry_hash))
    relay = build_relay(settings, store)
    try:
        relay.step()
        store.evidence._published = None  # as another process would: it finds it published
        relay.step()
    finally:
        relay.close()

    kind = "ma.cashplus.intake.evidence.root.v1"
    roots = [message for message in drain(settings, "events") if message["type"] == kind]
    assert len(roots) == 1
    details = roots[0]["data"]["details"]  # type: ignore[index]
    assert details["root"] == last
    assert details["day"] == store.evidence.yesterday().isoformat()
