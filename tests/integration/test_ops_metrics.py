"""/metrics for operators: every metric the example alert rules use exists, and tells the truth.

``docs/alerts.yml`` is what an operator loads into Prometheus; an alert on a
metric the gateway does not expose would never fire, so the rules are
checked against a real ``/metrics`` answer of the embedded gateway.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import event

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.services import Services
from gateway.store.leases import Leases
from normalizer.contract import Channel, Customer
from tests.peers.acks import other_complaint
from tests.peers.complaints import record
from tests.peers.processes import IntakeProcesses
from tests.peers.webform import start_web

ALERTS = Path(__file__).resolve().parents[2] / "docs" / "alerts.yml"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)")


def exposed(client: TestClient) -> tuple[set[str], str]:
    text = client.get("/metrics").text
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "counter":
                names.add(f"{name}_total")
        elif match := _SAMPLE.match(line):
            names.add(match.group(1))
    return names, text


def alert_metrics() -> set[str]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    expressions = [rule["expr"] for group in document["groups"] for rule in group["rules"]]
    return {name for expr in expressions for name in re.findall(r"\bintake_[a-z0-9_]+", expr)}


def test_every_metric_named_by_the_alert_rules_is_exposed(services: Services) -> None:
    Leases(services.store.engine).acquire("poller:imap://box", "me", ttl=30)
    names, _text = exposed(TestClient(create_app(services)))
    wanted = alert_metrics()
    assert len(wanted) >= 10
    assert wanted <= names, f"not exposed: {sorted(wanted - names)}"


def test_metrics_count_unresolved_quarantine_and_owed_acknowledgements(
    services: Services,
) -> None:
    for _ in range(2):
        record(services.store)
    services.store.complaints.quarantine(
        channel="api",
        data=b"{}",
        content_type="application/json",
        reason_code="invalid_json",
        reason="x",
    )
    _names, text = exposed(TestClient(create_app(services)))
    assert 'intake_quarantine_unresolved{channel="api"} 1.0' in text
    assert "intake_acks_due 2.0" in text
    assert "intake_acks_overdue 0.0" in text
    assert "intake_dead_letters 0.0" in text
    assert re.search(r'intake_last_complaint_timestamp_seconds\{channel="api"\} \d', text)


def test_metrics_run_their_queries_once_per_cache_period(services: Services) -> None:
    """Review S17: a burst of scrapes costs the database one round of queries."""
    client = TestClient(create_app(services))
    statements: list[str] = []

    def counted(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(services.store.engine, "before_cursor_execute", counted)
    try:
        assert client.get("/metrics").status_code == 200
        once = len(statements)
        assert once >= 10
        for _ in range(20):
            assert client.get("/metrics").status_code == 200
        assert len(statements) == once
    finally:
        event.remove(services.store.engine, "before_cursor_execute", counted)


def test_a_burst_of_readiness_probes_pings_the_store_once(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review S17: /readyz answers from a cache of a few seconds, not a ping per request."""
    pings: list[None] = []
    real = services.store.ping

    def counted() -> None:
        pings.append(None)
        real()

    monkeypatch.setattr(services.store, "ping", counted)
    client = TestClient(create_app(services))

    answers = [client.get("/readyz").status_code for _ in range(20)]

    assert answers == [200] * 20
    assert len(pings) == 1


@pytest.mark.parametrize(("networks", "status"), [("10.0.0.0/8", 403), ("127.0.0.0/8", 200)])
def test_metrics_are_served_only_to_the_allowed_networks(
    intake_processes: IntakeProcesses, settings: Settings, networks: str, status: int
) -> None:
    """Review S17: INTAKE_METRICS_ALLOWED_NETWORKS keeps /metrics to the operators' network."""
    web = start_web(intake_processes, settings, metrics_allowed_networks=networks)

    answer = httpx.get(f"{web.url}/metrics", timeout=30)

    assert answer.status_code == status


def test_the_ocr_histogram_is_one_aggregate_query(services: Services) -> None:
    """Review S17: the OCR times are summed by the database, no row per letter comes back."""
    record(services.store)
    statements: list[str] = []

    def counted(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(services.store.engine, "before_cursor_execute", counted)
    try:
        by_status, times = services.store.figures.letters((1.0, 10.0))
    finally:
        event.remove(services.store.engine, "before_cursor_execute", counted)
    assert times.count == 0 and times.within == [0, 0] and by_status == []
    letter_queries = [s for s in statements if "letters" in s]
    assert len(letter_queries) == 2
    assert all("finished_at, letters.claimed_at" not in s for s in letter_queries)


def test_metrics_count_non_complaints_waiting_to_be_sorted_and_the_oldest_age(
    services: Services,
) -> None:
    _names, empty = exposed(TestClient(create_app(services)))
    assert "intake_triage_oldest_to_sort_seconds 0.0" in empty
    for body, days in (("STOP", 3), ("merci", 1)):
        other_complaint(
            services,
            Channel.SMS,
            body,
            Customer(phone="+212661234567"),
            received_ago=timedelta(days=days),
        )
    _names, text = exposed(TestClient(create_app(services)))  # a new app: a fresh cache
    assert 'intake_triage_to_sort{kind="opt_out"} 1.0' in text
    assert 'intake_triage_to_sort{kind="thanks"} 1.0' in text
    found = re.search(r"^intake_triage_oldest_to_sort_seconds (\S+)$", text, re.M)
    assert found is not None
    assert abs(float(found.group(1)) - timedelta(days=3).total_seconds()) < 600
