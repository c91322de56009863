"""Prometheus figures for several instances, OCR, acknowledgements and dead letters.

``/metrics`` (``gateway.health``) -> **OperationsCollector** -> the shared
database (figures), the broker (dead-letter depth, cached), leases.

Read at scrape time from shared rows, like the rest of ``/metrics``, so any
web instance answers for all. The alert rules in ``docs/alerts.yml`` use
these names; a test checks that every name they use is exposed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.lib.services import Services
from gateway.ops import figures
from router.deadletters import DeadLetterGauge

OCR_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class OperationsCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services
        self.dead_letters = DeadLetterGauge(services.settings)

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        yield from self._channels()
        yield from self._stages(now)
        yield from self._relay(now)
        yield from self._acknowledgements(now)
        yield from self._letters()
        yield from self._triage(now)
        yield from self._leases(now)
        yield from self._broker()

    def _triage(self, now: datetime) -> Iterator[Metric]:
        """Non-complaints waiting for a person: a misjudged complaint's clock is running."""
        counts, oldest = self.services.store.triage.waiting()
        waiting = GaugeMetricFamily(
            "intake_triage_to_sort",
            "Inputs the triage found not to be complaints, waiting on /ops/triage/, by kind",
            labels=["kind"],
        )
        for kind, count in sorted(counts.items()):
            waiting.add_metric([kind], count)
        yield waiting
        yield GaugeMetricFamily(
            "intake_triage_oldest_to_sort_seconds",
            "Age of the oldest input waiting to be sorted (0 when none waits)",
            value=0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
        )

    def _stages(self, now: datetime) -> Iterator[Metric]:
        """Captured inputs: waiting for a runner (per channel, oldest age), and what they became."""
        captures = self.services.store.captures
        pending = GaugeMetricFamily(
            "intake_stage_pending",
            "Inputs captured at an edge and not normalized yet, by channel",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "intake_stage_oldest_pending_seconds",
            "Age of the oldest capture waiting for a normalizer runner, by channel",
            labels=["channel"],
        )
        for stage in captures.backlog():
            pending.add_metric([stage.channel], stage.pending)
            age = 0.0 if stage.oldest is None else (now - stage.oldest).total_seconds()
            oldest.add_metric([stage.channel], max(0.0, age))
        yield pending
        yield oldest
        outcomes = CounterMetricFamily(
            "intake_captures",
            "Inputs captured at the edges, by what the runners made of them",
            labels=["outcome"],
        )
        for outcome, count in sorted(captures.outcomes().items()):
            outcomes.add_metric([outcome], count)
        yield outcomes

    def _channels(self) -> Iterator[Metric]:
        store = self.services.store
        last = GaugeMetricFamily(
            "intake_last_complaint_timestamp_seconds",
            "When each channel last recorded a complaint (Unix time)",
            labels=["channel"],
        )
        for channel, moment in store.figures.last_complaint_by_channel().items():
            last.add_metric([channel], moment.timestamp())
        yield last
        open_items = GaugeMetricFamily(
            "intake_quarantine_unresolved",
            "Quarantined inputs not replayed or resolved yet, by channel",
            labels=["channel"],
        )
        for channel, count in store.quarantine.unresolved_by_channel().items():
            open_items.add_metric([channel], count)
        yield open_items

    def _relay(self, now: datetime) -> Iterator[Metric]:
        claimed = self.services.store.figures.outbox_claimed(now)
        yield GaugeMetricFamily(
            "intake_outbox_claimed",
            "Unpublished messages a relay is publishing right now (claimed, lease running)",
            value=claimed,
        )

    def _acknowledgements(self, now: datetime) -> Iterator[Metric]:
        source = self.services.store.figures
        acks = figures.acknowledgements(source, self.services.settings.timezone, now)
        yield GaugeMetricFamily(
            "intake_acks_overdue",
            "Complaints past their acknowledgement deadline without one sent",
            value=acks.overdue,
        )
        yield GaugeMetricFamily(
            "intake_acks_due",
            "Complaints owed an acknowledgement, deadline not reached yet",
            value=acks.due,
        )
        yield GaugeMetricFamily(
            "intake_acks_not_sent_after_two_days",
            "Complaints received over two days ago whose acknowledgement is not sent",
            value=acks.late_two_days,
        )
        states = GaugeMetricFamily(
            "intake_acknowledgements",
            "Acknowledgements by state (sent, failed, queued, sending, skipped)",
            labels=["status"],
        )
        for status, count in source.acknowledgement_states().items():
            states.add_metric([status], count)
        yield states
        yield from self._ack_budgets()

    def _ack_budgets(self) -> Iterator[Metric]:
        """Global daily budgets of acknowledgements (SMS + WhatsApp, e-mail): used and limit."""
        settings = self.services.settings
        limits = {"sms": settings.ack_sms_max_per_day, "email": settings.ack_email_max_per_day}
        used = GaugeMetricFamily(
            "intake_acks_budget_used",
            "Acknowledgements counted today (Africa/Casablanca day) against each daily budget",
            labels=["budget"],
        )
        limit = GaugeMetricFamily(
            "intake_acks_budget_limit", "Each daily budget of acknowledgements", labels=["budget"]
        )
        for name, count in self.services.store.acks.budgets_used_today().items():
            used.add_metric([name], count)
            limit.add_metric([name], limits.get(name, 0))
        yield used
        yield limit

    def _letters(self) -> Iterator[Metric]:
        by_status, times = self.services.store.figures.letters(OCR_BUCKETS)
        letters = GaugeMetricFamily(
            "intake_letters", "Postal letters by OCR status", labels=["status"]
        )
        for status, count in by_status:
            letters.add_metric([status], count)
        yield letters
        buckets = [
            (str(edge), within) for edge, within in zip(OCR_BUCKETS, times.within, strict=True)
        ]
        yield HistogramMetricFamily(
            "intake_ocr_seconds",
            "Time from a worker's claim of a letter to its OCR result",
            buckets=[*buckets, ("+Inf", times.count)],
            sum_value=times.total_seconds,
        )

    def _leases(self, now: datetime) -> Iterator[Metric]:
        held = GaugeMetricFamily(
            "intake_lease_held",
            "1 while a process holds the lease of a single-instance job",
            labels=["lease"],
        )
        takeovers = CounterMetricFamily(
            "intake_lease_takeovers",
            "Times a lease changed holder (a standby took over)",
            labels=["lease"],
        )
        for lease in self.services.store.leases.all():
            held.add_metric([lease.name], 1.0 if lease.expires_at > now else 0.0)
            takeovers.add_metric([lease.name], lease.epoch - 1)
        yield held
        yield takeovers

    def _broker(self) -> Iterator[Metric]:
        up, _detail = self.services.broker.check()
        yield GaugeMetricFamily(
            "intake_broker_up", "1 when the broker answered the last probe", value=float(up)
        )
        depth = self.dead_letters.value()
        if depth is not None:
            yield GaugeMetricFamily(
                "intake_dead_letters",
                "Messages waiting in the dead-letter queue (complaints.dead)",
                value=depth,
            )
