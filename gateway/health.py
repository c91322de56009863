"""Operator endpoints: liveness, readiness and Prometheus metrics.

Metrics that describe shared state (complaints recorded, outbox backlog,
publish errors) are read from the database at scrape time, so every web
instance reports the same truthful figures whichever process did the work.
``gateway.ops.metrics`` adds the figures of several instances (leases,
relay claims), OCR, acknowledgements, quarantine and dead letters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.lib.services import Services
from gateway.ops.metrics import OperationsCollector
from gateway.store import StoreUnavailable
from router.relay import HELD, PUBLISH_ERRORS, PUBLISHED

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        recorded = self.services.store.figures.recorded_by_channel()
        intake = CounterMetricFamily(
            "intake_complaints", "Complaints recorded, by channel", labels=["channel"]
        )
        for channel, count in recorded.complaints:
            intake.add_metric([channel], count)
        yield intake
        refused = CounterMetricFamily(
            "intake_quarantined", "Inputs quarantined with a reason, by channel", labels=["channel"]
        )
        for channel, count in recorded.quarantined:
            refused.add_metric([channel], count)
        yield refused
        yield from self._outbox()

    def _outbox(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.services.store.outbox.stats()
        counters = self.services.store.counters.all()
        yield GaugeMetricFamily(
            "intake_outbox_pending", "Messages waiting for the broker", value=stats.pending
        )
        yield GaugeMetricFamily(
            "intake_outbox_waiting",
            "Messages not yet due (e.g. waiting for a call transcript)",
            value=stats.waiting,
        )
        yield GaugeMetricFamily(
            "intake_outbox_held", "Messages held (e.g. too large to publish)", value=stats.held
        )
        age = 0.0
        if stats.oldest_pending_at is not None:
            age = max(0.0, (datetime.now(UTC) - stats.oldest_pending_at).total_seconds())
        yield GaugeMetricFamily(
            "intake_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished message",
            value=age,
        )
        yield CounterMetricFamily(
            "intake_published", "Messages confirmed by the broker", value=counters.get(PUBLISHED, 0)
        )
        yield CounterMetricFamily(
            "intake_publish_errors",
            "Messages the broker did not confirm",
            value=counters.get(PUBLISH_ERRORS, 0),
        )
        yield CounterMetricFamily(
            "intake_publish_held", "Messages held instead of published", value=counters.get(HELD, 0)
        )


def build_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["operations"])
    registry = CollectorRegistry()
    registry.register(StoreCollector(services))
    registry.register(OperationsCollector(services))

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up and serving."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(_request: Request) -> JSONResponse:
        """Database and broker reachable: this instance can take traffic."""

        def probe() -> dict[str, object]:
            checks: dict[str, object] = {}
            try:
                services.store.ping()
                checks["database"] = {"ok": True}
            except StoreUnavailable as exc:
                # Named after the database's own error, as the store reports it.
                checks["database"] = {"ok": False, "error": str(exc)}
            except Exception as exc:
                checks["database"] = {"ok": False, "error": type(exc).__name__}
            ok, detail = services.broker.check()
            checks["broker"] = {"ok": ok, "detail": detail}
            return checks

        checks = await run_in_threadpool(probe)
        ready = all(bool(item["ok"]) for item in checks.values())  # type: ignore[index]
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus text format."""
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=PROMETHEUS_TEXT)

    return router
