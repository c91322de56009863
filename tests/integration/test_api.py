"""The partner API and the operator endpoints, over real HTTP to an ``intake web`` process.

One ``intake web`` serves the whole module (embedded defaults in a temp
folder), with an ``intake normalize-worker`` beside it (the edge captures,
the runner records the complaint: ``settled`` waits for it); every test
sends its own unique complaint, so tests do not depend on each other or on
their order. Failures that need the process's insides (the
database failing mid-transaction, a broker behind a proxy) use the same app
in-process with ``TestClient``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from config.settings import Settings, load_settings
from gateway.app import create_app
from gateway.lib.normalize_runner import NormalizeRunner
from gateway.lib.services import Services, build_services
from gateway.runner import capture_normalizers
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, EvidenceRow, IntakeRow, OutboxRow, QuarantineRow
from normalizer.reference import new_reference
from router.relay import build_relay
from tests.peers.complaints import count_rows, failing_inserts_into
from tests.peers.processes import IntakeProcesses, env_for, free_port, intake_env, wait_for_port
from tests.peers.runners import running_normalizer, settled
from tests.peers.tcpproxy import TcpProxy

MAX_REQUEST_BYTES = 4096


@dataclass
class Gateway:
    http: httpx.Client
    key: str
    settings: Settings
    services: Services  # the same store, opened by the test to look inside

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("api")
    port = free_port()
    settings = load_settings(data_dir=folder / "var", max_request_bytes=MAX_REQUEST_BYTES)
    services = build_services(settings)
    key = services.store.api_keys.create("crm")
    processes = IntakeProcesses(workdir=folder, env=intake_env())
    try:
        web = processes.start("web", env=env_for(settings, http_port=port))
        # The edge captures; this runner records the complaints (``settled``).
        processes.start("normalize-worker", env=env_for(settings))
        wait_for_port(port, web)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield Gateway(http, key, settings, services)
    finally:
        processes.stop_all()
        services.close()


def complaint(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "body": f"Bonjour, mon transfert {uuid.uuid4()} n'est jamais arrivé.",
        "customer": {"name": "Amina", "phone": "0612345678"},
        "language": "fr",
    }
    payload.update(changes)
    return payload


def quarantined(services: Services, raw: bytes) -> list[QuarantineRow]:
    digest = hashlib.sha256(raw).hexdigest()
    with reading(services.store.engine) as session:
        return list(session.scalars(select(QuarantineRow).where(QuarantineRow.sha256 == digest)))


# -- POST /v1/complaints ------------------------------------------------------
def test_new_complaint_is_201_and_a_repeat_is_200_with_the_same_reference(
    gateway: Gateway,
) -> None:
    raw = json.dumps(complaint()).encode()
    headers = {**gateway.auth, "Content-Type": "application/json"}

    first = gateway.http.post("/v1/complaints", content=raw, headers=headers)
    again = gateway.http.post("/v1/complaints", content=raw, headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["reference"] == first.json()["reference"]
    assert again.json()["id"] == first.json()["id"]
    assert first.headers["Location"].endswith(f"/v1/complaints/{first.json()['reference']}")


def test_same_idempotency_key_and_body_is_the_same_complaint(gateway: Gateway) -> None:
    headers = {**gateway.auth, "Idempotency-Key": str(uuid.uuid4())}
    payload = complaint()

    first = gateway.http.post("/v1/complaints", json=payload, headers=headers)
    again = gateway.http.post("/v1/complaints", json=payload, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["reference"] == first.json()["reference"]


def test_idempotency_key_reused_with_another_body_is_409(gateway: Gateway) -> None:
    headers = {**gateway.auth, "Idempotency-Key": str(uuid.uuid4())}
    first = gateway.http.post("/v1/complaints", json=complaint(), headers=headers)

    reused = gateway.http.post("/v1/complaints", json=complaint(), headers=headers)

    assert first.status_code == 201
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["reference"] in reused.json()["error"]["message"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer cpk_not-a-key-we-issued", "Basic Y3JtOnNlY3JldA=="],
    ids=["missing", "unknown-key", "basic-scheme"],
)
def test_request_without_a_valid_key_is_401_with_a_bearer_challenge(
    gateway: Gateway, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    before = count_rows(gateway.services.store, ComplaintRow)

    response = gateway.http.post("/v1/complaints", json=complaint(), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert count_rows(gateway.services.store, ComplaintRow) == before


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        (b'{"body": "Bonjour", "customer": {"phone": "06', "invalid_json", "body"),
        (b"", "invalid_json", "body"),
        (
            json.dumps(complaint(customer={"phone": "12"})).encode(),
            "invalid_field",
            "customer.phone",
        ),
        (json.dumps({"customer": {"phone": "0612345678"}}).encode(), "invalid_field", "body"),
        (json.dumps(complaint(priority="high")).encode(), "invalid_field", "priority"),
    ],
    ids=["invalid-json", "empty-request", "bad-phone", "missing-body", "unknown-field"],
)
def test_refused_input_is_422_naming_the_field_and_kept_in_quarantine(
    gateway: Gateway, raw: bytes, code: str, field: str
) -> None:
    raw = raw.replace(b"Bonjour", f"Bonjour {uuid.uuid4()}".encode())  # unique evidence
    headers = {**gateway.auth, "Content-Type": "application/json"}

    response = gateway.http.post("/v1/complaints", content=raw, headers=headers)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    [kept] = quarantined(gateway.services, raw)
    assert (kept.channel, kept.reason_code) == ("api", code)
    assert gateway.services.store.blobs.get(kept.stored_at) == raw


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_limit_is_413(gateway: Gateway, framing: str) -> None:
    raw = json.dumps(complaint(body="x" * (MAX_REQUEST_BYTES + 1))).encode()
    content: bytes | Iterator[bytes] = raw
    if framing == "chunked":
        content = iter([raw[i : i + 1000] for i in range(0, len(raw), 1000)])
    before = count_rows(gateway.services.store, ComplaintRow)

    response = gateway.http.post(
        "/v1/complaints",
        content=content,
        headers={**gateway.auth, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert count_rows(gateway.services.store, ComplaintRow) == before


# -- GET /v1/complaints/{reference} --------------------------------------------
def test_status_says_unpublished_until_the_relay_has_run(gateway: Gateway) -> None:
    created = gateway.http.post("/v1/complaints", json=complaint(), headers=gateway.auth)
    status_url = f"/v1/complaints/{created.json()['reference']}"
    settled(gateway.services)

    before = gateway.http.get(status_url, headers=gateway.auth)
    relay = build_relay(gateway.services.settings, gateway.services.store)
    try:
        assert relay.publish_pending().complete
    finally:
        relay.close()
    after = gateway.http.get(status_url, headers=gateway.auth)

    assert before.status_code == after.status_code == 200
    assert before.json()["published"] is False
    assert after.json()["published"] is True
    assert after.json()["complaint"]["id"] == created.json()["id"]


def test_status_of_an_unknown_reference_is_404(gateway: Gateway) -> None:
    response = gateway.http.get(f"/v1/complaints/{new_reference()}", headers=gateway.auth)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_status_of_a_reference_with_a_wrong_check_character_is_422(gateway: Gateway) -> None:
    valid = new_reference()
    last = valid[-1]
    wrong = valid[:-1] + ("2" if last != "2" else "3")

    response = gateway.http.get(f"/v1/complaints/{wrong}", headers=gateway.auth)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "reference"


# -- operator endpoints ---------------------------------------------------------
def test_healthz_is_ok(gateway: Gateway) -> None:
    response = gateway.http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_store_and_broker_answer(gateway: Gateway) -> None:
    response = gateway.http.get("/readyz")

    assert response.status_code == 200
    assert response.json()["ready"] is True


def test_openapi_documents_post_complaints_with_the_complaint_in_schema(
    gateway: Gateway,
) -> None:
    document = gateway.http.get("/openapi.json").json()

    body = document["paths"]["/v1/complaints"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ComplaintIn"
    }
    schema = document["components"]["schemas"]["ComplaintIn"]
    assert {"body", "customer"} <= set(schema["required"])
    assert {"body", "customer", "received_at", "follow_up_of"} <= set(schema["properties"])


# -- in-process: failures of our own -------------------------------------------
@pytest.fixture
def local(settings: Settings) -> Iterator[tuple[TestClient, Services, dict[str, str]]]:
    services = build_services(settings)
    key = services.store.api_keys.create("crm")
    try:
        yield TestClient(create_app(services)), services, {"Authorization": f"Bearer {key}"}
    finally:
        services.close()


def test_store_failure_is_503_with_retry_after_and_nothing_captured(
    local: tuple[TestClient, Services, dict[str, str]],
) -> None:
    client, services, auth = local
    payload = complaint()

    with failing_inserts_into(services.store.engine, "intake"):
        refused = client.post("/v1/complaints", json=payload, headers=auth)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert refused.json()["error"]["code"] == "temporarily_unavailable"
    assert "OperationalError" not in refused.text
    for table in (IntakeRow, EvidenceRow, ComplaintRow, OutboxRow):
        assert count_rows(services.store, table) == 0
    # The client's retry is a new capture, not a repeat of a half-written one.
    assert client.post("/v1/complaints", json=payload, headers=auth).status_code == 201


def test_a_runner_s_store_failure_leaves_the_capture_for_the_next_try(
    local: tuple[TestClient, Services, dict[str, str]],
) -> None:
    """The 201 was given: a store failing under the runner loses nothing, half-writes nothing."""
    client, services, auth = local
    accepted = client.post("/v1/complaints", json=complaint(), headers=auth)
    assert accepted.status_code == 201

    runner = NormalizeRunner(services, capture_normalizers(), name="test-runner")
    with failing_inserts_into(services.store.engine, "outbox"):
        runner.run_once()
    for table in (EvidenceRow, ComplaintRow, OutboxRow):
        assert count_rows(services.store, table) == 0
    assert services.store.captures.state_of(accepted.json()["id"])[0] == "captured"  # type: ignore[index]

    with running_normalizer(services):
        settled(services)
    message = services.store.complaints.get_by_reference(accepted.json()["reference"])
    assert message is not None and message.id == accepted.json()["id"]


def test_readyz_is_503_when_the_broker_port_is_closed(data_dir: Path) -> None:
    settings = load_settings(
        data_dir=data_dir, broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    )
    services = build_services(settings)
    try:
        response = TestClient(create_app(services)).get("/readyz")
    finally:
        services.close()

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["broker"]["ok"] is False


def metric_values(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_follow_intake_backlog_and_publish_errors(
    data_dir: Path, topology_prefix: str, rabbitmq_proxy: TcpProxy
) -> None:
    settings = load_settings(
        data_dir=data_dir,
        broker_url=rabbitmq_proxy.url(),
        topology_prefix=topology_prefix,
        metrics_cache_seconds=0,  # two scrapes a moment apart, each fresh
    )
    services = build_services(settings)
    key = services.store.api_keys.create("crm")
    client = TestClient(create_app(services))
    auth = {"Authorization": f"Bearer {key}"}
    relay = build_relay(services.settings, services.store)
    try:
        with running_normalizer(services):
            for changes in ({}, {}, {"channel": "phone"}):
                response = client.post("/v1/complaints", json=complaint(**changes), headers=auth)
                assert response.status_code == 201
            settled(services)
        rabbitmq_proxy.refuse()
        relay.step()
        during = metric_values(client)
        rabbitmq_proxy.restore()
        relay.step()
        after = metric_values(client)
    finally:
        relay.close()
        services.close()

    assert during[("intake_complaints_total", (("channel", "api"),))] == 2
    assert during[("intake_complaints_total", (("channel", "phone"),))] == 1
    assert during[("intake_outbox_pending", ())] == 3
    assert during[("intake_outbox_oldest_pending_age_seconds", ())] > 0
    assert during[("intake_publish_errors_total", ())] == 3
    assert after[("intake_outbox_pending", ())] == 0
    assert after[("intake_outbox_oldest_pending_age_seconds", ())] == 0
    assert after[("intake_published_total", ())] == 3
    assert after[("intake_publish_errors_total", ())] == 3


# -- fields only some keys may set (review S16) -----------------------------------------
def key_with(gateway: Gateway, *scopes: str) -> dict[str, str]:
    """The Authorization header of a new key with ``scopes`` (the process sees it at once)."""
    key = gateway.services.store.api_keys.create(f"partner-{uuid.uuid4()}", scopes)
    return {"Authorization": f"Bearer {key}"}


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def test_a_key_without_the_backdate_scope_cannot_date_a_complaint_in_the_past(
    gateway: Gateway,
) -> None:
    answer = gateway.http.post(
        "/v1/complaints", json=complaint(received_at=days_ago(20)), headers=gateway.auth
    )

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "received_at"
    assert "received-at:backdate" in error["message"]


def test_the_backdate_scope_dates_a_complaint_within_the_bound_only(gateway: Gateway) -> None:
    auth = key_with(gateway, "complaints:write", "received-at:backdate")

    within = gateway.http.post(
        "/v1/complaints", json=complaint(received_at=days_ago(20)), headers=auth
    )
    beyond = gateway.http.post(
        "/v1/complaints", json=complaint(received_at=days_ago(31)), headers=auth
    )

    assert within.status_code == 201, within.text
    assert datetime.fromisoformat(within.json()["received_at"]) < datetime.now(UTC) - timedelta(
        days=19
    )
    assert beyond.status_code == 422
    assert beyond.json()["error"]["field"] == "received_at"
    assert "more than 30 days" in beyond.json()["error"]["message"]


def test_a_partners_own_clock_a_little_behind_ours_is_not_a_backdate(gateway: Gateway) -> None:
    answer = gateway.http.post(
        "/v1/complaints", json=complaint(received_at=days_ago(1 / 24 / 60)), headers=gateway.auth
    )

    assert answer.status_code == 201, answer.text


def test_only_a_key_with_the_origin_scope_says_the_regulator_forwarded_it(
    gateway: Gateway,
) -> None:
    refused = gateway.http.post(
        "/v1/complaints", json=complaint(origin="bank_al_maghrib"), headers=gateway.auth
    )
    forwarded = gateway.http.post(
        "/v1/complaints",
        json=complaint(origin="bank_al_maghrib"),
        headers=key_with(gateway, "complaints:write", "origin:set"),
    )

    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "origin"
    assert "origin:set" in refused.json()["error"]["message"]
    assert forwarded.status_code == 201, forwarded.text
    settled(gateway.services)
    recorded = gateway.services.store.complaints.get_by_reference(forwarded.json()["reference"])
    assert recorded is not None and recorded.origin.value == "bank_al_maghrib"


@pytest.mark.parametrize("channel", ["email", "letter", "webform", "sms", "whatsapp"])
def test_a_key_cannot_claim_another_channel_without_the_origin_scope(
    gateway: Gateway, channel: str
) -> None:
    answer = gateway.http.post(
        "/v1/complaints", json=complaint(channel=channel), headers=gateway.auth
    )

    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "channel"


def test_a_call_centre_crm_may_say_the_complaint_came_by_phone(gateway: Gateway) -> None:
    answer = gateway.http.post(
        "/v1/complaints", json=complaint(channel="phone"), headers=gateway.auth
    )

    assert answer.status_code == 201, answer.text


# -- links from the public URL, never from Host (review S19) ---------------------------
def test_status_url_and_location_ignore_the_host_the_caller_sent(gateway: Gateway) -> None:
    answer = gateway.http.post(
        "/v1/complaints",
        json=complaint(),
        headers={**gateway.auth, "Host": "evil.example", "X-Forwarded-Proto": "https"},
    )

    assert answer.status_code == 201, answer.text
    expected = f"{gateway.settings.public_base_url}/v1/complaints/{answer.json()['reference']}"
    assert answer.json()["status_url"] == expected
    assert answer.headers["Location"] == expected


def test_without_a_public_url_the_links_are_relative(settings: Settings) -> None:
    services = build_services(settings.model_copy(update={"public_base_url": ""}))
    key = services.store.api_keys.create("crm")
    try:
        client = TestClient(create_app(services), base_url="http://evil.example")
        answer = client.post(
            "/v1/complaints", json=complaint(), headers={"Authorization": f"Bearer {key}"}
        )
    finally:
        services.close()

    assert answer.status_code == 201, answer.text
    assert answer.json()["status_url"] == f"/v1/complaints/{answer.json()['reference']}"
    assert answer.headers["Location"] == answer.json()["status_url"]
