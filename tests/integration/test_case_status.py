"""Status back from case handling: the API, the complaints.status queue, the register.

The store is SQLite and the machine's PostgreSQL; the queue is the machine's
RabbitMQ (a namespace per test); the HTTP API runs in-process.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from kombu import Connection, Producer

from config.settings import Settings, load_settings
from gateway.app import create_app
from gateway.cases.notices import Notifier
from gateway.cases.worker import CaseWorker
from gateway.lib.services import Services, build_services
from gateway.ops.register import write_xlsx
from router.broker import topology_for
from tests.peers.runners import normalize_captured
from tests.peers.services import RABBITMQ_URL, require_rabbitmq

pytestmark = pytest.mark.integration


class NoSender:
    """No notice may go out in these tests (they check statuses, not sending)."""

    def send(self, outgoing: object) -> object:
        raise AssertionError("no notice expected")


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Services]:
    changes: dict[str, object] = {}
    if request.param == "postgresql":
        changes["database_url"] = request.getfixturevalue("postgres_url")
    built = build_services(load_settings(data_dir=data_dir, **changes))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def api(services: Services) -> tuple[TestClient, dict[str, str], dict[str, str]]:
    """The app, a CRM key (write, read back) and case management's key (status:write)."""
    crm = services.store.api_keys.create("crm")
    cases = services.store.api_keys.create("case-management", {"status:write"})
    return (
        TestClient(create_app(services)),
        {"Authorization": f"Bearer {crm}"},
        {"Authorization": f"Bearer {cases}"},
    )


def submit(client: TestClient, auth: dict[str, str], body: str = "Ma carte est bloquée") -> dict:
    answer = client.post(
        "/v1/complaints",
        headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        json={"body": body, "customer": {"email": "amina@example.ma"}, "language": "fr"},
    )
    assert answer.status_code == 201, answer.text
    normalize_captured(client.app.state.services)  # type: ignore[attr-defined]
    return answer.json()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_a_status_posted_reaches_get_with_its_history(api) -> None:
    client, crm, cases = api
    reference = submit(client, crm)["reference"]
    started = datetime.now(UTC)
    at = started + timedelta(seconds=1)

    first = client.post(
        f"/v1/complaints/{reference}/status",
        headers=cases,
        json={"status": "in_progress", "at": iso(started), "note": "agent 12"},
    )
    answered = client.post(
        f"/v1/complaints/{reference}/status",
        headers=cases,
        json={"status": "answered", "at": iso(at)},
    )
    shown = client.get(f"/v1/complaints/{reference}", headers=crm).json()

    assert (first.status_code, answered.status_code) == (201, 201)
    assert shown["status"] == "answered"
    assert datetime.fromisoformat(shown["answered_at"]) == at
    assert [entry["status"] for entry in shown["status_history"]] == ["in_progress", "answered"]
    assert shown["status_history"][0]["note"] is None  # the partner does not see staff notes
    desk = client.app.state.services.store.api_keys.create("desk", {"complaints:read-all"})
    staff = client.get(f"/v1/complaints/{reference}", headers={"Authorization": f"Bearer {desk}"})
    assert staff.json()["status_history"][0]["note"] == "agent 12"


def test_the_same_report_twice_is_one_fact(api) -> None:
    client, crm, cases = api
    reference = submit(client, crm)["reference"]
    report = {"status": "in_progress", "at": iso(datetime.now(UTC))}

    codes = [
        client.post(f"/v1/complaints/{reference}/status", headers=cases, json=report).status_code
        for _ in range(2)
    ]

    assert codes == [201, 200]
    shown = client.get(f"/v1/complaints/{reference}", headers=crm).json()
    assert len(shown["status_history"]) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"status": "reopened", "at": "2026-12-01T10:00:00+01:00"}, 422, "invalid_field"),
        ({"status": "answered", "at": "2026-12-01T10:00:00"}, 422, "invalid_field"),
        ({"status": "answered", "at": "+3000"}, 422, "at_in_future"),
        ({"status": "answered", "at": "2001-01-01T00:00:00Z"}, 422, "at_before_received"),
        ({"status": "extended", "at": "NOW"}, 422, "answer_due_at_missing"),
        ({"status": "answered", "at": "NOW", "colour": "red"}, 422, "invalid_field"),
    ],
)
def test_a_bad_report_is_refused_with_its_reason(api, body, status, code) -> None:
    client, crm, cases = api
    reference = submit(client, crm)["reference"]
    now = datetime.now(UTC)
    if body["at"] == "NOW":
        body = body | {"at": iso(now)}
    elif body["at"] == "+3000":
        body = body | {"at": iso(now + timedelta(days=3))}

    answer = client.post(f"/v1/complaints/{reference}/status", headers=cases, json=body)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_a_closed_complaint_takes_no_other_status(api) -> None:
    client, crm, cases = api
    reference = submit(client, crm)["reference"]
    now = datetime.now(UTC)
    url = f"/v1/complaints/{reference}/status"
    assert client.post(url, headers=cases, json={"status": "closed", "at": iso(now)}).is_success

    again = client.post(
        url, headers=cases, json={"status": "in_progress", "at": iso(now + timedelta(seconds=1))}
    )

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "transition_refused"


def test_an_unknown_reference_is_404_and_a_key_without_the_scope_403(api) -> None:
    client, crm, cases = api
    body = {"status": "answered", "at": iso(datetime.now(UTC))}

    unknown = client.post("/v1/complaints/CP-2222-2222/status", headers=cases, json=body)
    reference = submit(client, crm)["reference"]
    without_scope = client.post(f"/v1/complaints/{reference}/status", headers=crm, json=body)

    assert unknown.status_code in (404, 422)  # a bad check character is 422
    assert without_scope.status_code == 403


def captured_only(client: TestClient, auth: dict[str, str]) -> str:
    """A complaint the API accepted (201, captured) that no runner has recorded yet."""
    answer = client.post(
        "/v1/complaints",
        headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        json={"body": "Ma carte est bloquée", "customer": {"email": "amina@example.ma"}},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["reference"])


def test_a_report_for_a_reference_not_recorded_yet_is_409_retry_after_then_recorded(
    api,
) -> None:
    client, crm, cases = api
    reference = captured_only(client, crm)
    body = {"status": "in_progress", "at": iso(datetime.now(UTC))}

    early = client.post(f"/v1/complaints/{reference}/status", headers=cases, json=body)
    normalize_captured(client.app.state.services)
    later = client.post(f"/v1/complaints/{reference}/status", headers=cases, json=body)

    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "not_recorded_yet"
    assert early.headers["Retry-After"] == "1"
    assert later.status_code == 201, later.text


def test_a_report_for_a_quarantined_capture_is_409_quarantined(
    api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.api.staged

    client, crm, cases = api
    reference = captured_only(client, crm)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a normalizer bug")

    monkeypatch.setattr(channels.api.staged, "read_submission", broken)
    normalize_captured(client.app.state.services)
    body = {"status": "in_progress", "at": iso(datetime.now(UTC))}
    answer = client.post(f"/v1/complaints/{reference}/status", headers=cases, json=body)

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "quarantined"
    assert "Retry-After" not in answer.headers


def test_an_extension_queues_a_notice_with_the_new_deadline(api, services: Services) -> None:
    client, crm, cases = api
    accepted = submit(client, crm)
    due = datetime.fromisoformat(accepted["answer_due_at"]) + timedelta(days=20)

    answer = client.post(
        f"/v1/complaints/{accepted['reference']}/status",
        headers=cases,
        json={
            "status": "extended",
            "at": iso(datetime.now(UTC)),
            "answer_due_at": iso(due),
            "reason": "third_party",
        },
    )

    assert answer.status_code == 201, answer.text
    assert datetime.fromisoformat(answer.json()["answer_extended_to"]) == due
    notices = services.store.cases.notices_of(accepted["reference"])
    assert [(n.kind, n.status, n.reason) for n in notices] == [
        ("extension", "pending", "third_party")
    ]
    assert notices[0].answer_due_at == due


def test_the_same_status_again_with_a_later_at_changes_nothing(api) -> None:
    client, crm, cases = api
    reference = submit(client, crm)["reference"]
    url = f"/v1/complaints/{reference}/status"
    started = datetime.now(UTC) + timedelta(seconds=1)

    first = client.post(url, headers=cases, json={"status": "in_progress", "at": iso(started)})
    again = client.post(
        url,
        headers=cases,
        json={"status": "in_progress", "at": iso(started + timedelta(seconds=5)), "note": "x"},
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # the current state, its `at` the first one
    assert datetime.fromisoformat(again.json()["at"]) == started
    shown = client.get(url.removesuffix("/status"), headers=crm).json()
    assert [entry["status"] for entry in shown["status_history"]] == ["in_progress"]


def test_the_same_extension_told_again_sends_no_second_notice(api, services: Services) -> None:
    client, crm, cases = api
    accepted = submit(client, crm)
    url = f"/v1/complaints/{accepted['reference']}/status"
    due = datetime.fromisoformat(accepted["answer_due_at"]) + timedelta(days=20)
    started = datetime.now(UTC) + timedelta(seconds=1)

    codes = [
        client.post(
            url,
            headers=cases,
            json={"status": "extended", "at": iso(at), "answer_due_at": iso(due)},
        ).status_code
        for at in (started, started + timedelta(seconds=5))
    ]
    later = client.post(
        url,
        headers=cases,
        json={
            "status": "extended",
            "at": iso(started + timedelta(seconds=8)),
            "answer_due_at": iso(due + timedelta(days=5)),
        },
    )

    assert codes == [201, 200]
    assert later.status_code == 201  # a later deadline is a new fact, and a new notice
    notices = services.store.cases.notices_of(accepted["reference"])
    assert [n.answer_due_at for n in notices] == [due, due + timedelta(days=5)]


def test_a_repeat_is_still_held_to_the_time_bounds(api) -> None:
    client, crm, cases = api
    reference = submit(client, crm)["reference"]
    url = f"/v1/complaints/{reference}/status"
    now = datetime.now(UTC)
    client.post(url, headers=cases, json={"status": "in_progress", "at": iso(now)})

    future = client.post(
        url, headers=cases, json={"status": "in_progress", "at": iso(now + timedelta(days=2))}
    )

    assert future.status_code == 422
    assert future.json()["error"]["code"] == "at_in_future"


def test_closed_without_an_answer_keeps_the_answer_empty(api, services: Services) -> None:
    client, crm, cases = api
    accepted = submit(client, crm)
    reference = accepted["reference"]
    closed_at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)

    answer = client.post(
        f"/v1/complaints/{reference}/status",
        headers=cases,
        json={"status": "closed", "at": iso(closed_at), "note": "withdrawn by the customer"},
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["status"], body["answered_at"]) == ("closed", None)
    assert datetime.fromisoformat(body["closed_at"]) == closed_at
    zone = services.settings.timezone
    month = closed_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    row = next(
        row for row in services.store.register(zone).month(month).rows if row.reference == reference
    )
    assert (row.status, row.answered_at, row.answer_days, row.answer_late) == (
        "closed",
        None,
        None,
        False,  # closed before its deadline
    )


# -- the queue -------------------------------------------------------------


@pytest.fixture
def amqp_store_services(
    request: pytest.FixtureRequest, data_dir: Path, topology_prefix: str
) -> Iterator[Services]:
    require_rabbitmq()
    settings: Settings = load_settings(
        data_dir=data_dir,
        broker_url=RABBITMQ_URL,
        topology_prefix=topology_prefix,
        relay_max_backoff=1.0,
        database_url=request.getfixturevalue("postgres_url"),
    )
    built = build_services(settings)
    try:
        yield built
    finally:
        built.close()


def publish_status(settings: Settings, body: bytes, routing_key: str) -> None:
    topology = topology_for(settings)
    with Connection(settings.broker_url) as connection:
        for queue in topology.queues:
            queue(connection.default_channel).declare()
        Producer(connection.default_channel, exchange=topology.exchange).publish(
            body,
            routing_key=routing_key,
            content_type="application/cloudevents+json",
            content_encoding="utf-8",
            delivery_mode=2,
        )


def status_event(reference: str, status: str, at: datetime, event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id or str(uuid.uuid4()),
            "source": "urn:cashplus:case-management",
            "type": "ma.cashplus.complaint.status.v1",
            "subject": reference,
            "time": at.isoformat(),
            "datacontenttype": "application/json",
            "data": {
                "schema_version": "1.0",
                "reference": reference,
                "status": status,
                "at": at.isoformat(),
                "a_later_minor_field": 1,
            },
        }
    ).encode()


def run_until(worker: CaseWorker, done, timeout: float = 30.0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "the case worker did not get there in time"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(15)


def test_a_status_from_the_queue_reaches_get_and_the_register(
    amqp_store_services: Services, tmp_path: Path
) -> None:
    services = amqp_store_services
    crm = services.store.api_keys.create("crm")
    client = TestClient(create_app(services))
    reference = submit(client, {"Authorization": f"Bearer {crm}"})["reference"]
    at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    event_id = str(uuid.uuid4())
    for _ in range(2):  # a repeat (a publisher's resend) changes nothing
        publish_status(
            services.settings, status_event(reference, "answered", at, event_id), "status.answered"
        )
    publish_status(services.settings, b"{not json", "status.answered")
    worker = CaseWorker(services, Notifier(services, senders={}))

    run_until(worker, lambda: worker.handled >= 3)

    shown = client.get(f"/v1/complaints/{reference}", headers={"Authorization": f"Bearer {crm}"})
    assert shown.json()["status"] == "answered"
    assert len(shown.json()["status_history"]) == 1
    assert shown.json()["status_history"][0]["source"] == "queue"
    refused = services.store.quarantine.entries(channel="status")
    assert [item.reason_code for item in refused] == ["invalid_json"]
    zone = ZoneInfo(services.settings.timezone)
    month = at.astimezone(zone).strftime("%Y-%m")
    register = services.store.register(services.settings.timezone).month(month)
    row = next(row for row in register.rows if row.reference == reference)
    days = (at.astimezone(zone).date() - row.received_at.astimezone(zone).date()).days
    assert (row.status, row.answered_at, row.answer_days) == ("answered", at, days)
    out = tmp_path / "register.xlsx"
    write_xlsx(register, out)
    assert out.stat().st_size > 0


def test_a_report_the_complaint_cannot_take_is_quarantined_not_lost(
    amqp_store_services: Services,
) -> None:
    services = amqp_store_services
    at = datetime.now(UTC)
    publish_status(
        services.settings, status_event("CP-PQMW-JFQS", "answered", at), "status.answered"
    )
    worker = CaseWorker(services, Notifier(services, senders={}))

    run_until(worker, lambda: worker.handled >= 1)

    refused = services.store.quarantine.entries(channel="status")
    assert [item.reason_code for item in refused] == ["not_found"]
    kept = services.store.blobs.get(refused[0].stored_at)
    assert json.loads(kept)["data"]["reference"] == "CP-PQMW-JFQS"


def test_from_the_queue_a_report_for_a_reference_not_recorded_yet_waits_for_the_runner(
    amqp_store_services: Services,
) -> None:
    services = amqp_store_services
    crm = services.store.api_keys.create("crm")
    client = TestClient(create_app(services))
    reference = captured_only(client, {"Authorization": f"Bearer {crm}"})
    at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    event = status_event(reference, "in_progress", at)
    publish_status(services.settings, event, "status.in_progress")
    worker = CaseWorker(services, Notifier(services, senders={}))

    # Tried before any runner recorded the complaint: put back, not quarantined.
    run_until(worker, lambda: worker.failures >= 1)
    assert worker.handled == 0
    normalize_captured(services)
    run_until(worker, lambda: worker.handled >= 1)

    assert services.store.quarantine.entries(channel="status") == []
    shown = client.get(f"/v1/complaints/{reference}", headers={"Authorization": f"Bearer {crm}"})
    assert shown.json()["status"] == "in_progress"


def test_from_the_queue_a_repeat_is_no_new_fact_and_closed_needs_no_answer(
    amqp_store_services: Services,
) -> None:
    services = amqp_store_services
    crm = services.store.api_keys.create("crm")
    client = TestClient(create_app(services))
    auth = {"Authorization": f"Bearer {crm}"}
    repeated, closed = submit(client, auth)["reference"], submit(client, auth)["reference"]
    at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    for moment in (at, at + timedelta(seconds=2)):  # the same status, a later `at`
        publish_status(
            services.settings, status_event(repeated, "in_progress", moment), "status.in_progress"
        )
    publish_status(services.settings, status_event(closed, "closed", at), "status.closed")
    worker = CaseWorker(services, Notifier(services, senders={}))

    run_until(worker, lambda: worker.handled >= 3)

    assert services.store.quarantine.entries(channel="status") == []
    state = services.store.cases.state(repeated)
    assert state is not None
    assert (state.status, state.at, len(state.history)) == ("in_progress", at, 1)
    ended = services.store.cases.state(closed)
    assert ended is not None
    assert (ended.status, ended.answered_at, ended.closed_at) == ("closed", None, at)
