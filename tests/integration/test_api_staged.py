"""The partner API staged: ``201`` once the body is captured, the complaint recorded by a runner.

The app in-process (``TestClient``) on a store the test opens too: a runner
is blocked (no claim) to see the capture alone, then let go; a runner step
that raises quarantines the body the edge had accepted, and its replay
records the complaint with the capture's reference and receipt time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import channels.api.staged as staged
from channels.api.intake import read_submission, submission_input
from channels.handoff import hand_off
from config.settings import Settings
from gateway.app import create_app
from gateway.lib.normalize_runner import NormalizeRunner
from gateway.lib.services import Services, build_services
from gateway.ops.quarantine import replay
from gateway.runner import capture_normalizers
from gateway.store.captures import Captured
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, IntakeRow, QuarantineRow
from tests.peers.complaints import count_rows
from tests.peers.runners import running_normalizer, settled

pytestmark = pytest.mark.integration


@dataclass
class Api:
    http: TestClient
    services: Services
    auth: dict[str, str]


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    services = build_services(settings)
    key = services.store.api_keys.create("crm", ["complaints:write", "complaints:status"])
    try:
        yield Api(TestClient(create_app(services)), services, {"Authorization": f"Bearer {key}"})
    finally:
        services.close()


def complaint(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "body": f"Bonjour, mon transfert {uuid.uuid4()} n'est jamais arrivé.",
        "customer": {"name": "Amina", "phone": "0612345678"},
        "language": "fr",
    }
    payload.update(changes)
    return payload


def runner(services: Services) -> NormalizeRunner:
    return NormalizeRunner(services, capture_normalizers(), name="test-runner")


@pytest.fixture
def blocked(api: Api, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No runner claims anything until ``monkeypatch.undo()``."""
    monkeypatch.setattr(api.services.store.captures, "claim", lambda *_a, **_k: [])
    return monkeypatch


def test_201_means_the_body_is_captured_and_no_complaint_is_written_yet(
    api: Api, blocked: pytest.MonkeyPatch
) -> None:
    with running_normalizer(api.services):
        answer = api.http.post("/v1/complaints", json=complaint(), headers=api.auth)

        assert answer.status_code == 201, answer.text
        captured = api.services.store.captures.by_reference(answer.json()["reference"])
        assert captured is not None
        assert captured.id == answer.json()["id"]
        assert api.services.store.captures.state_of(captured.id) == ("captured", None, None)
        assert captured.source_ids["api_client"] == "crm"
        assert count_rows(api.services.store, ComplaintRow) == 0


def test_status_says_captured_then_normalized(api: Api, blocked: pytest.MonkeyPatch) -> None:
    answer = api.http.post("/v1/complaints", json=complaint(), headers=api.auth)
    status_url = f"/v1/complaints/{answer.json()['reference']}"

    before = api.http.get(status_url, headers=api.auth)
    blocked.undo()
    assert runner(api.services).run_once() == 1
    after = api.http.get(status_url, headers=api.auth)

    assert before.status_code == after.status_code == 200
    assert (before.json()["state"], before.json()["complaint"]) == ("captured", None)
    assert after.json()["state"] == "normalized"
    message = after.json()["complaint"]
    assert (message["id"], message["reference"]) == (
        answer.json()["id"],
        answer.json()["reference"],
    )
    assert datetime.fromisoformat(message["received_at"]) == datetime.fromisoformat(
        answer.json()["received_at"]
    )


def test_another_partner_does_not_see_a_capture(api: Api, blocked: pytest.MonkeyPatch) -> None:
    answer = api.http.post("/v1/complaints", json=complaint(), headers=api.auth)
    other = api.services.store.api_keys.create("other", ["complaints:write", "complaints:status"])

    seen = api.http.get(
        f"/v1/complaints/{answer.json()['reference']}",
        headers={"Authorization": f"Bearer {other}"},
    )

    assert seen.status_code == 404


def test_a_repeat_answers_the_same_reference_before_and_after_the_runner(
    api: Api, blocked: pytest.MonkeyPatch
) -> None:
    headers = {**api.auth, "Idempotency-Key": str(uuid.uuid4())}
    payload = complaint()

    first = api.http.post("/v1/complaints", json=payload, headers=headers)
    before = api.http.post("/v1/complaints", json=payload, headers=headers)
    blocked.undo()
    assert runner(api.services).run_once() == 1
    after = api.http.post("/v1/complaints", json=payload, headers=headers)
    reused = api.http.post("/v1/complaints", json=complaint(), headers=headers)

    assert (first.status_code, before.status_code, after.status_code) == (201, 200, 200)
    assert before.json() == first.json() == after.json()
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["reference"] in reused.json()["error"]["message"]
    assert count_rows(api.services.store, ComplaintRow) == 1


def test_a_complaint_recorded_before_the_api_was_staged_still_answers_its_repeat(
    api: Api,
) -> None:
    """A complaint written by ``hand_off`` (before this change) is found by its dedup key."""
    key = str(uuid.uuid4())
    payload = complaint()
    raw = json.dumps(payload).encode()
    client = api.services.store.api_keys.by_name("crm")
    assert client is not None
    now = datetime.now(UTC)
    draft = read_submission(raw, now, client, timedelta(days=30))
    raw_input = submission_input(client, raw, key, draft, api.services.settings.timezone)
    legacy = hand_off(api.services, raw_input, draft)

    again = api.http.post(
        "/v1/complaints",
        content=raw,
        headers={**api.auth, "Idempotency-Key": key, "Content-Type": "application/json"},
    )
    reused = api.http.post(
        "/v1/complaints", json=complaint(), headers={**api.auth, "Idempotency-Key": key}
    )

    assert again.status_code == 200, again.text
    assert (again.json()["id"], again.json()["reference"]) == (
        legacy.message.id,
        legacy.message.reference,
    )
    assert reused.status_code == 409


def test_a_body_the_runner_fails_on_is_quarantined_after_its_201_and_replays_to_its_reference(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = staged.submission_of

    def broken(services: Services, captured: Captured) -> Any:
        raise ZeroDivisionError("a bug in the runner's step")

    monkeypatch.setattr(staged, "submission_of", broken)
    answer = api.http.post("/v1/complaints", json=complaint(), headers=api.auth)
    assert answer.status_code == 201
    assert runner(api.services).run_once() == 1

    with reading(api.services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
    assert (item.channel, item.reason_code) == ("api", "normalizer_failed")
    assert item.source_ids["capture_id"] == answer.json()["id"]
    status = api.http.get(f"/v1/complaints/{answer.json()['reference']}", headers=api.auth)
    assert status.json()["state"] == "quarantined"
    assert count_rows(api.services.store, ComplaintRow) == 0

    monkeypatch.setattr(staged, "submission_of", real)
    result = replay(api.services, api.services.store.quarantine.get(item.id))  # type: ignore[arg-type]

    assert result.ok, result.detail
    assert result.reference == answer.json()["reference"]
    message = api.services.store.complaints.get_by_reference(answer.json()["reference"])
    assert message is not None
    assert message.id == answer.json()["id"]
    assert message.received_at == datetime.fromisoformat(answer.json()["received_at"])
    assert api.services.store.captures.state_of(message.id) == ("done", "complaint", message.id)


def test_a_body_whose_client_was_deleted_is_quarantined_by_the_runner(
    api: Api, blocked: pytest.MonkeyPatch
) -> None:
    answer = api.http.post("/v1/complaints", json=complaint(), headers=api.auth)
    blocked.undo()
    blocked.setattr(api.services.store.api_keys, "by_name", lambda _name: None)

    assert runner(api.services).run_once() == 1

    with reading(api.services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
        capture = session.get(IntakeRow, answer.json()["id"])
    assert item.reason_code == "unknown_client"
    assert item.source_ids["capture_id"] == answer.json()["id"]
    assert item.source_ids["received_at"]
    assert capture is not None and capture.state == "quarantined"


def test_a_runner_beside_the_app_records_a_batch_in_one_step(api: Api) -> None:
    with running_normalizer(api.services):
        answers = [
            api.http.post("/v1/complaints", json=complaint(), headers=api.auth) for _ in range(5)
        ]
        settled(api.services)

    references: Sequence[str] = [answer.json()["reference"] for answer in answers]
    for reference in references:
        assert api.services.store.complaints.get_by_reference(reference) is not None
