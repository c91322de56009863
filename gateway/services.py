"""What a gateway process holds for its whole life: settings, store, broker probe.

Built once at start-up and shared by the HTTP app, the relay and the channel
workers of the same process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from config.settings import Settings
from gateway.store import Store, open_store
from normalizer.pipeline import PipelineContext
from router.broker import connect, describe, is_amqp


@dataclass
class BrokerProbe:
    """Is the broker reachable? Cached briefly so /readyz can be polled often."""

    settings: Settings
    ttl: float = 2.0
    _checked_at: float = 0.0
    _result: tuple[bool, str] = (False, "not checked")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> tuple[bool, str]:
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl:
                return self._result
            self._result = self._probe()
            self._checked_at = time.monotonic()
            return self._result

    def _probe(self) -> tuple[bool, str]:
        url = self.settings.resolved_broker_url
        connection = connect(self.settings)
        try:
            if is_amqp(url):
                connection.ensure_connection(max_retries=1, timeout=2)
            else:
                connection.default_channel  # noqa: B018 (opens the transport)
            return True, describe(url)
        except Exception as exc:
            return False, f"{describe(url)}: {type(exc).__name__}"
        finally:
            connection.release()


@dataclass
class Services:
    settings: Settings
    store: Store
    broker: BrokerProbe

    @property
    def pipeline(self) -> PipelineContext:
        return PipelineContext(
            zone=self.settings.timezone,
            ack_days=self.settings.ack_days,
            answer_days=self.settings.answer_days,
        )

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Services(settings=settings, store=open_store(settings), broker=BrokerProbe(settings))
