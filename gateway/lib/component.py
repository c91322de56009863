"""The interface every component implements, and the table that lists them.

A component is what the host runs: a channel (a thin edge that validates
input in its protocol's terms, hands the raw bytes and a draft to
``channels.handoff`` and only then answers), or a service beside intake
(acknowledgements, the operator pages, staff accounts, the language tools).
It offers HTTP routes (mounted by the gateway app), a long-running worker
(started by ``intake run`` and by its own Procfile process), shell commands,
a replay hook for its quarantined inputs: whichever it needs.

A table (``ComponentTable``: ``channels.CHANNELS``, the host's
``gateway.components.COMPONENTS``) names where each component is and
imports it on first use, and lists the shell commands each adds with their
one-line help: ``intake --help`` and ``intake relay`` import no channel at
all, ``intake imap poll`` imports only the e-mail channel. Adding a channel
is one package and one line in ``channels/__init__.py``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    # Types only: importing this module (every channel does) must stay cheap.
    import click
    from fastapi import APIRouter

    from config.settings import Settings
    from gateway.lib.services import Services
    from gateway.store.captures import Captured, Finished
    from gateway.store.quarantine import QuarantineItem, ReplayResult

Worker = Callable[["Services", threading.Event], None]
Replayer = Callable[["Services", "QuarantineItem"], "ReplayResult"]
# A channel's runner step: captured rows -> what each became (``gateway.lib.normalize_runner``).
CaptureNormalizer = Callable[["Services", Sequence["Captured"]], "list[Finished | Exception]"]


@dataclass(frozen=True)
class Component:
    name: str
    # HTTP routes of the channel, built for a process's services.
    routes: Callable[[Services], APIRouter] | None = None
    # Long-running loop (a poller, a server); returns when the event is set.
    worker: Worker | None = None
    # Whether this process should run the worker, given the settings.
    enabled: Callable[[Services], bool] = lambda _services: True
    # Shell commands of the channel, added to ``intake`` (e.g. ``intake imap``).
    commands: tuple[click.Command, ...] = ()
    # Request body limits of the channel's upload routes, by path prefix,
    # where the gateway-wide INTAKE_MAX_REQUEST_BYTES is too small (scans).
    body_limits: Callable[[Settings], Mapping[str, int]] | None = None
    # Upload paths whose credentials are checked before their body is read
    # (``gateway.lib.http.credentials``): exact path -> "client" or "staff".
    credentials_first: Mapping[str, str] = field(default_factory=dict)
    # Re-runs a quarantined input once its cause is fixed (operator page,
    # ``intake quarantine reprocess``); None: this channel's items are not replayable.
    replay: Replayer | None = None
    # The quarantine's channel names ``replay`` handles; empty: the adapter's name.
    replays: tuple[str, ...] = ()
    # Normalizes what its edge captured (``store.captures``), for the runners;
    # ``normalizes``: the capture channel names it handles.
    normalize: CaptureNormalizer | None = None
    normalizes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One line of a component table: where the component is, and what ``intake`` gets from it."""

    name: str
    # Where the component is, imported on first use: ``package.module`` (its
    # ``ADAPTER``) or ``package.module:NAME`` (one package, several components).
    module: str
    # Shell commands the adapter adds, with their one-line help, so ``intake
    # --help`` lists them without importing the channel (a test keeps them true).
    commands: Mapping[str, str] = field(default_factory=dict)


class ComponentTable(Sequence[Component]):
    """A table of components, imported when first iterated or indexed."""

    def __init__(self, *entries: Entry) -> None:
        self.entries = entries
        self._adapters: tuple[Component, ...] | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> tuple[Component, ...]:
        with self._lock:
            if self._adapters is None:
                self._adapters = tuple(_load(entry) for entry in self.entries)
            return self._adapters

    def __iter__(self) -> Iterator[Component]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self.entries)

    @overload
    def __getitem__(self, index: int) -> Component: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Component]: ...
    def __getitem__(self, index: int | slice) -> Component | Sequence[Component]:
        return self._loaded()[index]

    def command_help(self) -> dict[str, str]:
        """Every channel command's name and one-line help, without importing any channel."""
        return {name: text for entry in self.entries for name, text in entry.commands.items()}

    def command(self, name: str) -> click.Command | None:
        """The shell command ``name``, importing only the channel that declares it."""
        for entry in self.entries:
            if name in entry.commands:
                found = [item for item in _load(entry).commands if item.name == name]
                return found[0] if found else None
        return None


def _load(entry: Entry) -> Component:
    module, _, attribute = entry.module.partition(":")
    adapter: Component = getattr(importlib.import_module(module), attribute or "ADAPTER")
    if adapter.name != entry.name:
        raise RuntimeError(f"{entry.module} is {adapter.name!r}, listed as {entry.name!r}")
    return adapter
