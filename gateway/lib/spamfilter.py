"""The spam filter: SpamAssassin's spamd, asked about each e-mail (``INTAKE_SPAM_FILTER_URL``).

e-mail channel (``channels.email.intake.read_mail``) -> **SpamFilter.signals**
(spamd's SYMBOLS command over TCP, aiospamc) -> ``TriageSignal``s on the
draft -> the normalizer's ``triage`` step decides.

The filter may help triage, never hold intake up: spamd unreachable, slow
past ``INTAKE_SPAM_FILTER_TIMEOUT`` or answering nonsense gives no signal
(the mail is a complaint unless the other rules say otherwise), a warning in
the log and one more ``spam_filter_errors`` (``intake_spam_filter_errors``
on /metrics). Like spamc, only the first ``MAX_SCANNED_BYTES`` of a mail are
sent: a mail with scans of several megabytes does not hold the poller.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aiospamc
from aiospamc.header_values import SpamValue

from config.settings import Settings
from normalizer.triage import TriageKind, TriageSignal

log = logging.getLogger("intake.triage")

SPAM_FILTER_ERRORS = "spam_filter_errors"
# Rules whose names say phishing (SpamAssassin's PHISHING, URI_PHISH, *_PHISH_*...).
_PHISHING_MARK = "PHISH"
# What spamc sends at most (its -s default): the headers and the text say what
# spam is; several megabytes of scanned attachments only cost spamd time.
MAX_SCANNED_BYTES = 500 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class SpamdFilter:
    host: str
    port: int
    timeout: float
    # Told of each failure (the store's counter); never raises into intake.
    on_error: Callable[[], None] | None = None

    def signals(self, message: bytes) -> tuple[TriageSignal, ...]:
        """spamd's verdict on a raw e-mail: spam or phishing, else nothing (not spam, no answer)."""
        try:
            spam, score, rules = _run(self._symbols(message[:MAX_SCANNED_BYTES]))
        except Exception as exc:  # any failure: no verdict, never a lost or held mail
            log.warning(
                "spam filter unavailable (%s): mail kept as a complaint", type(exc).__name__
            )
            self._count_error()
            return ()
        if not spam:
            return ()
        phishing = [rule for rule in rules if _PHISHING_MARK in rule.upper()]
        kind = TriageKind.PHISHING if phishing else TriageKind.SPAM
        named = phishing or rules
        reason = f"spamd score {score:g}" + (f": {', '.join(named[:10])}" if named else "")
        return (TriageSignal(kind, "spamd", reason, score),)

    async def _symbols(self, message: bytes) -> tuple[bool, float, list[str]]:
        response = await aiospamc.symbols(
            message,
            host=self.host,
            port=self.port,
            timeout=aiospamc.Timeout(total=self.timeout, connection=self.timeout),
        )
        verdict = response.headers.get("Spam")
        if not isinstance(verdict, SpamValue):
            raise ValueError("spamd answered without a Spam header")
        body = bytes(response.body or b"").decode("ascii", "replace")
        rules = [rule.strip() for rule in body.split(",") if rule.strip()]
        return bool(verdict.value), float(verdict.score), rules

    def _count_error(self) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error()
        except Exception as exc:  # the counter is a nicety; intake goes on
            log.debug("spam filter error not counted: %s", type(exc).__name__)


def spam_filter_for(
    settings: Settings, on_error: Callable[[], None] | None = None
) -> SpamdFilter | None:
    """The filter ``INTAKE_SPAM_FILTER_URL`` names, None when it is empty."""
    where = settings.spam_filter
    if where is None:
        return None
    host, port = where
    return SpamdFilter(host, port, settings.spam_filter_timeout, on_error)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, inside an event loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from a loop's thread (not the SMTP path, which ingests in threads): aside.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
