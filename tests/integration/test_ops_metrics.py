"""/metrics for operators: every metric the example alert rules use exists, and tells the truth.

``docs/alerts.yml`` is what an operator loads into Prometheus; an alert on a
metric the gateway does not expose would never fire, so the rules are
checked against a real ``/metrics`` answer of the embedded gateway.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.lib.services import Services
from gateway.store.leases import Leases
from tests.peers.complaints import record

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
