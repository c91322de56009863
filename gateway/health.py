"""Operator endpoints: liveness, readiness and Prometheus metrics.

Metrics that describe shared state (complaints recorded, outbox backlog,
publish errors) are read from the database at scrape time, so every web
instance reports the same truthful figures whichever process did the work.
``gateway.ops.metrics`` adds the figures of several instances (leases,
relay claims), OCR, acknowledgements, quarantine and dead letters.

Both are cached (``INTAKE_METRICS_CACHE_SECONDS``; ``/readyz``: 5 s at most):
however often they are asked, the database sees the queries once per
period, and concurrent scrapes wait for the one computing them.
``/metrics`` can require a bearer token (``INTAKE_METRICS_TOKEN``: 401
without it) and answer only some networks (``INTAKE_METRICS_ALLOWED_NETWORKS``:
403 elsewhere).
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from config.settings import ConfigError
from gateway.lib.http.errors import ApiError
from gateway.lib.services import Services
from gateway.lib.spamfilter import SPAM_FILTER_ERRORS
from gateway.ops.metrics import OperationsCollector
from gateway.store import StoreUnavailable
from router.relay import HELD, PUBLISH_ERRORS, PUBLISHED

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
# /readyz is cached no longer than this (a load balancer wants a fresh answer).
READYZ_CACHE_LIMIT = 5.0

Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


class Cached:
    """``compute()``'s value, computed again once ``ttl`` seconds have passed (0: every time).

    One caller computes while the others wait for its value, so a burst of
    requests costs one computation.
    """

    def __init__(
        self, compute: Callable[[], object], ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.compute = compute
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._value: object = None
        self._at: float | None = None

    def get(self) -> object:
        with self._lock:
            now = self.clock()
            if self._at is None or self.ttl <= 0 or now - self._at >= self.ttl:
                self._value = self.compute()
                self._at = now
            return self._value


class CachedCollector(Collector):
    """The metrics of ``collectors``, collected at most once per ``ttl`` seconds."""

    def __init__(self, collectors: Iterable[Collector], ttl: float) -> None:
        self.collectors = tuple(collectors)
        self.cache = Cached(self._collect_all, ttl)

    def _collect_all(self) -> list[Metric]:
        return [metric for collector in self.collectors for metric in collector.collect()]

    def collect(self) -> Iterator[Metric]:
        metrics: list[Metric] = self.cache.get()  # type: ignore[assignment]
        return iter(metrics)


def parse_networks(text: str) -> Networks:
    """``10.0.0.0/8, 192.168.1.5`` -> networks; a malformed entry is a configuration error."""
    found: Networks = []
    for part in text.split(","):
        if part.strip():
            try:
                found.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"INTAKE_METRICS_ALLOWED_NETWORKS: {part.strip()!r} is not a network"
                ) from None
    return found


def _allowed(host: str | None, networks: Networks) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


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
        yield CounterMetricFamily(
            "intake_spam_filter_errors",
            "E-mails spamd could not judge (kept as complaints)",
            value=counters.get(SPAM_FILTER_ERRORS, 0),
        )


def build_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["operations"])
    settings = services.settings
    registry = CollectorRegistry()
    registry.register(
        CachedCollector(
            (StoreCollector(services), OperationsCollector(services)),
            settings.metrics_cache_seconds,
        )
    )
    networks = parse_networks(settings.metrics_allowed_networks)
    token = settings.metrics_token.get_secret_value()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up and serving."""
        return {"status": "ok"}

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

    # One cache for the process: a burst of probes costs one database ping and one broker check.
    readiness = Cached(probe, min(settings.metrics_cache_seconds, READYZ_CACHE_LIMIT))

    @router.get("/readyz")
    async def readyz(_request: Request) -> JSONResponse:
        """Database and broker reachable: this instance can take traffic."""
        checks: dict[str, object] = await run_in_threadpool(readiness.get)  # type: ignore[arg-type]
        ready = all(bool(item["ok"]) for item in checks.values())  # type: ignore[index]
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        """Prometheus text format."""
        if not _allowed(request.client.host if request.client else None, networks):
            raise ApiError(403, "forbidden", "metrics are not served to this network")
        if token:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                raise ApiError(
                    401,
                    "unauthorized",
                    "metrics need Authorization: Bearer TOKEN (INTAKE_METRICS_TOKEN)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=PROMETHEUS_TEXT)

    return router
