"""The soak's two records: embedded and production figures kept apart, trend and load shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report, soak, suite


def _samples(slope_mb_per_hour: float, count: int = 20) -> list[dict[str, Any]]:
    return [
        {"t": 60.0 * i, "rss_mb": 300.0 + slope_mb_per_hour * i / 60, "load": 1.0}
        for i in range(count)
    ]


def _result(store: str, broker: str) -> dict[str, Any]:
    kinds = ("email", "sms", "webform", "letter")
    return {
        "minutes": 30.0,
        "store": store,
        "broker": broker,
        "rates": dict.fromkeys(kinds, 1.0),
        "answered": dict.fromkeys(kinds, 10),
        "failed": dict.fromkeys(kinds, 0),
        "accepted": 40,
        "throughput": 7.0,
        "stored": 40,
        "published": 40,
        "consumed": 40,
        "duplicated": 0,
        "lost": 0,
        "rss_start_mb": 300.0,
        "rss_end_mb": 312.0,
        "rss_max_mb": 312.0,
        "p99_max_ms": 900.0,
        "p99_median_ms": 200.0,
        "rss_trend_mb_per_hour": 24.0,
        "load_mean": 1.5,
        "load_max": 3.25,
        "gateway_exit": None,
        "samples": _samples(24.0),
        "date": "2026-11-26",
        "command": ".venv/bin/python bench/soak.py --minutes 30 --production",
        "load": 1.2,
        "seconds": 2100.0,
    }


@pytest.fixture
def results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "benchmarks.json"
    monkeypatch.setattr(suite, "RESULTS", path)
    return path


def test_rss_trend_is_the_slope_in_mb_per_hour() -> None:
    assert soak.rss_trend(_samples(12.0)) == pytest.approx(12.0)


def test_rss_trend_needs_a_few_samples() -> None:
    assert soak.rss_trend(_samples(12.0, count=2)) is None


def test_each_configuration_has_its_own_key_and_picture() -> None:
    embedded = soak.record(_result("SQLite", "filesystem"))
    production = soak.record(_result("PostgreSQL", "RabbitMQ"))
    assert embedded is not None and production is not None
    assert embedded[0] == "soak" and embedded[1].name == "soak.png"
    assert production[0] == "soak_production" and production[1].name == "soak-production.png"


def test_a_half_production_run_is_not_recorded() -> None:
    assert soak.record(_result("PostgreSQL", "filesystem")) is None


def test_production_figures_leave_the_embedded_ones_alone(results_file: Path) -> None:
    suite.store_result("soak", _result("SQLite", "filesystem"))
    suite.store_result("soak_production", _result("PostgreSQL", "RabbitMQ"))
    stored = json.loads(results_file.read_text(encoding="utf-8"))["results"]
    assert stored["soak"]["figures"]["store"] == "SQLite"
    assert stored["soak_production"]["figures"]["store"] == "PostgreSQL"


def test_stored_soak_keeps_load_and_duration_beside_the_figures(results_file: Path) -> None:
    suite.store_result("soak_production", _result("PostgreSQL", "RabbitMQ"))
    entry = json.loads(results_file.read_text(encoding="utf-8"))["results"]["soak_production"]
    assert (entry["load"], entry["seconds"]) == (1.2, 2100.0)
    assert "samples" not in entry["figures"] and "load" not in entry["figures"]


def test_production_section_shows_trend_load_and_loss() -> None:
    entry = {
        "date": "2026-11-26",
        "command": "cmd",
        "load": 1.2,
        "seconds": 2100.0,
        "figures": {
            k: v
            for k, v in _result("PostgreSQL", "RabbitMQ").items()
            if k not in ("samples", "date", "command", "load", "seconds")
        },
    }
    section, summary = suite.render_section("soak_production", entry, "2026-11-26")
    assert "+24.0 MB/h" in section
    assert "1.5 / 3.25" in section
    assert "load average 1.2 at its start" in section
    assert "soak-production.png" in section
    assert summary == report.soak_production(entry["figures"])[1]
    assert "PostgreSQL + RabbitMQ" in summary[0] and "lost 0" in summary[1]
