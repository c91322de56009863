"""What a gateway process holds for its whole life: settings, store, broker probe.

Built once at start-up and shared by the HTTP app, the relay and the channel
workers of the same process.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import ConfigError, Settings
from gateway.lib.spamfilter import SPAM_FILTER_ERRORS, SpamdFilter, spam_filter_for
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

    @property
    def spam_filter(self) -> SpamdFilter | None:
        """spamd, when ``INTAKE_SPAM_FILTER_URL`` names one; its failures are counted."""
        return spam_filter_for(
            self.settings, on_error=lambda: self.store.counters.add(SPAM_FILTER_ERRORS)
        )

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings) -> Services:
    configure_sandbox(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Services(settings=settings, store=open_store(settings), broker=BrokerProbe(settings))


def read_only_services(settings: Settings) -> Services:
    """Services whose store refuses every write and was not migrated (a dry run); no
    folder made, no sandbox tried: such a command reads the store and nothing else."""
    return Services(
        settings=settings,
        store=open_store(settings, read_only=True),
        broker=BrokerProbe(settings),
    )


def configure_sandbox(settings: Settings) -> str:
    """The hostile-file sandbox for this process (``INTAKE_SANDBOX``), tried at start.

    ``bwrap`` without a working bubblewrap refuses to start (a configuration
    error, exit 78); ``auto`` without it warns once and goes on under rlimits.
    """
    from normalizer.ocr import sandbox  # the OCR package (magic, Pillow) only when used

    try:
        return sandbox.configure(settings.sandbox, hidden=(settings.data_dir,))
    except sandbox.SandboxUnavailable as exc:
        raise ConfigError(f"INTAKE_SANDBOX: {exc}") from None
