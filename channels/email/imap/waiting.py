"""Waiting for new mail between syncs: IDLE when the server offers it, a timer otherwise.

IMAP inbox -> poller: sync -> **wait** -> sync -> ... IDLE is only a hint
(a notification can be lost with a connection), so the poller also does a
full resync on every (re)connect and whenever an IDLE period ends.

The wait checks the stop event at least every ``TICK`` seconds, so
``intake run`` and ``intake imap poll`` stop promptly on SIGTERM.
"""

from __future__ import annotations

import threading
import time
from enum import StrEnum
from typing import Any

from imapclient import IMAPClient

# How often the stop event is looked at while IDLE.
TICK = 1.0


class Wakeup(StrEnum):
    NEWS = "news"  # the server said something arrived (or may have)
    TIMEOUT = "timeout"  # the IDLE period or the poll interval ended
    STOP = "stop"


class _ConnectionClosed(ConnectionError):
    """The server ended the session (``* BYE``) while we were waiting."""


def wait_for_mail(
    client: IMAPClient, stop: threading.Event, *, idle_seconds: float, poll_interval: float
) -> Wakeup:
    if not client.has_capability("IDLE"):
        return Wakeup.STOP if stop.wait(poll_interval) else Wakeup.TIMEOUT
    client.idle()
    # No DONE after a BYE or a network error: the connection is gone.
    outcome = _watch(client, stop, idle_seconds)
    client.idle_done()
    return outcome


def _watch(client: IMAPClient, stop: threading.Event, idle_seconds: float) -> Wakeup:
    deadline = time.monotonic() + idle_seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # Renewed before the server's limit (RFC 2177: 29 minutes at most).
            return Wakeup.TIMEOUT
        tick = min(TICK, remaining)
        started = time.monotonic()
        responses = client.idle_check(timeout=tick)
        if any(_is_bye(item) for item in responses):
            raise _ConnectionClosed("the IMAP server closed the session")
        if any(_is_news(item) for item in responses):
            return Wakeup.NEWS
        if not responses and time.monotonic() - started < tick / 2:
            # The socket was readable but held no line: imapclient swallows an
            # EOF this way. DONE will fail on a dead connection, or show that
            # nothing happened (then a sync finds nothing: cheap).
            return Wakeup.NEWS
    return Wakeup.STOP


def _is_bye(item: tuple[Any, ...]) -> bool:
    return bool(item) and item[0] == b"BYE"


def _is_news(item: tuple[Any, ...]) -> bool:
    # "* 12 EXISTS": a message was added. EXPUNGE and FETCH (flag changes) are not news.
    return len(item) >= 2 and item[1] == b"EXISTS"
