"""The interface every channel adapter implements, and the table that lists them.

A channel is a thin edge: it validates input in its protocol's terms, hands
the raw bytes and a draft to ``intake`` (which stores the evidence and
commits the complaint with its outbox row), and only then answers its
protocol. Adding a channel is one new module and one line in
``channels/__init__.py``.

A channel offers HTTP routes (mounted by the gateway app), a long-running
worker (started by ``intake run`` and by its own Procfile process), or both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import click
from fastapi import APIRouter

from config.settings import Settings
from gateway.services import Services

Worker = Callable[[Services, threading.Event], None]


@dataclass(frozen=True)
class ChannelAdapter:
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
