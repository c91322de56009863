"""What a gateway process holds for its whole life: settings, store, broker probe.

Built once at start-up and shared by the HTTP app, the relay and the channel
workers of the same process.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from gateway.store import Store, open_store
from normalizer.pipeline import PipelineContext, pipeline_context
from router.broker import BrokerProbe


@dataclass
class Services:
    settings: Settings
    store: Store
    broker: BrokerProbe

    @property
    def pipeline(self) -> PipelineContext:
        return pipeline_context(self.settings)

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Services(settings=settings, store=open_store(settings), broker=BrokerProbe(settings))
