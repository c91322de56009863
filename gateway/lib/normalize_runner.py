"""Normalizer runners: captured inputs -> complaints, events or quarantine, in batches.

edge -> ``store.captures.capture`` (the edge answers) -> **NormalizeRunner**
(claim a batch, oldest first) -> the channel's ``CaptureNormalizer`` (parse,
normalize, one group commit of the batch's complaints with the capture's id
and reference) -> ``store.captures.finish``.

Failures, by kind:

- our store is down (``StoreUnavailable``): the row is given back and tried
  again after a pause; nothing is lost, the edge had answered already;
- anything else the normalizer raised on one input (a bug): that input is
  quarantined with the exception's name as its reason, the batch goes on;
  ``intake quarantine reprocess`` (or the /ops/ button) runs it again through
  this same path once the bug is fixed (``rerun``), dated from its capture;
- a row claimed ``MAX_ATTEMPTS`` times without being finished (the runner
  died on it each time): quarantined without being tried again.

Several runners (threads, processes, hosts) share the work through the
store's claims; a claim that is never finished expires after
``INTAKE_NORMALIZE_LEASE_SECONDS`` and the row is taken again: the complaint
written the first time is found by its dedup key, with the same id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.lib.component import CaptureNormalizer
from gateway.lib.services import Services
from gateway.store.captures import MAX_ATTEMPTS, QUARANTINED, Captured, Finished
from gateway.store.intake import StoreUnavailable
from gateway.store.quarantine import QuarantineItem, ReplayResult

log = logging.getLogger("intake.normalize")

RETRY_AFTER_STORE_FAILURE = 5.0
NORMALIZER_FAILED = "normalizer_failed"
# Where a quarantine item says which capture it keeps (a replay runs that capture again).
CAPTURE_ID = "capture_id"
TOO_MANY_ATTEMPTS = "too_many_attempts"


@dataclass
class RunnerStats:
    """What one runner did since it started (for logs and benchmarks)."""

    batches: int = 0
    finished: int = 0  # made a complaint, a repeat, an event...
    quarantined: int = 0  # refused by the channel's checks, or the normalizer failed
    retried: int = 0


class NormalizeRunner:
    def __init__(
        self,
        services: Services,
        normalizers: Mapping[str, CaptureNormalizer],
        *,
        name: str | None = None,
    ) -> None:
        self.services = services
        self.normalizers = dict(normalizers)
        # Host, process and a short random tag (a thread ident is long enough for
        # the log filter to take it for a card number).
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stats = RunnerStats()

    def run_once(self, limit: int | None = None) -> int:
        """Claim one batch and finish it; how many rows were claimed (0: nothing to do)."""
        settings = self.services.settings
        captures = self.services.store.captures
        claimed = captures.claim(
            self.name,
            limit=limit or settings.normalize_batch_size,
            lease=settings.normalize_lease_seconds,
            channels=self.normalizers.keys(),
        )
        if not claimed:
            return 0
        self.stats.batches += 1
        finished: list[Finished] = []
        tried: list[Captured] = []
        for item in claimed:
            if item.attempts > MAX_ATTEMPTS:
                finished.append(self._quarantine(item, TOO_MANY_ATTEMPTS, "claimed too often"))
            else:
                tried.append(item)
        by_channel: dict[str, list[Captured]] = {}
        for item in tried:  # receipt order kept inside each channel
            by_channel.setdefault(item.channel, []).append(item)
        for channel, items in by_channel.items():
            finished.extend(self._normalize(channel, items))
        captures.finish(finished)
        quarantined = sum(1 for item in finished if item.outcome == QUARANTINED)
        self.stats.quarantined += quarantined
        self.stats.finished += len(finished) - quarantined
        return len(claimed)

    def _normalize(self, channel: str, items: list[Captured]) -> list[Finished]:
        try:
            outcomes = self.normalizers[channel](self.services, items)
        except StoreUnavailable:
            outcomes = [StoreUnavailable("store unavailable")] * len(items)
        except Exception as exc:  # the batch step itself failed: each input on its own
            log.warning("%s batch failed (%s): one by one", channel, type(exc).__name__)
            outcomes = [self._one(channel, item) for item in items]
        finished: list[Finished] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Finished):
                finished.append(outcome)
            elif isinstance(outcome, StoreUnavailable):
                self.stats.retried += 1
                self.services.store.captures.release(item.id, RETRY_AFTER_STORE_FAILURE)
            else:
                log.error(
                    "normalizer failed on %s input %s: %s",
                    channel,
                    item.id,
                    type(outcome).__name__,
                    exc_info=outcome,
                )
                finished.append(self._quarantine(item, NORMALIZER_FAILED, _reason(outcome)))
        return finished

    def _one(self, channel: str, item: Captured) -> Finished | Exception:
        try:
            (outcome,) = self.normalizers[channel](self.services, [item])
        except Exception as exc:
            return exc
        return outcome

    def _quarantine(self, item: Captured, code: str, reason: str) -> Finished:
        return quarantine_capture(self.services, item, code, reason)

    def run(self, stop: threading.Event) -> None:
        """Batches until ``stop``; idle, wait for a capture in this process or the poll."""
        arrived = self.services.store.captures.arrived
        poll = self.services.settings.normalize_poll_interval
        log.info("normalizer runner %s started (%s)", self.name, ", ".join(self.normalizers))
        while not stop.is_set():
            try:
                if self.run_once():
                    continue
            except StoreUnavailable:
                stop.wait(RETRY_AFTER_STORE_FAILURE)
                continue
            except Exception:  # a bug outside one input's step: the runner must go on
                log.exception("normalizer runner %s: a batch failed", self.name)
                stop.wait(RETRY_AFTER_STORE_FAILURE)
                continue
            arrived.wait(poll)
            arrived.clear()
        log.info(
            "normalizer runner %s stopped: %s finished, %s quarantined",
            self.name,
            self.stats.finished,
            self.stats.quarantined,
        )


def quarantine_capture(services: Services, item: Captured, code: str, reason: str) -> Finished:
    """The captured bytes kept in quarantine with why, linked to their capture (its replay).

    Whole: the input passed its edge's checks and its sender was given a
    reference. Bytes that cannot be read are kept as metadata, said in the reason.
    """
    try:
        data = services.store.captures.data_of(item)
    except Exception as exc:
        data, reason = b"", f"{reason}; its stored bytes unreadable ({type(exc).__name__})"
    item_id = services.store.complaints.quarantine(
        channel=item.channel,
        data=data,
        content_type=item.content_type,
        reason_code=code,
        reason=reason,
        source_ids={
            **item.source_ids,
            "received_at": item.received_at.isoformat(),
            CAPTURE_ID: item.id,
        },
    )
    return Finished(item.id, QUARANTINED, item_id)


def rerun(
    services: Services, capture_id: str, normalizer: CaptureNormalizer
) -> Finished | Exception | None:
    """A quarantined capture through its channel's runner step again, now (a replay).

    The row is made ``captured`` again and normalized in the caller's thread;
    its outcome is recorded. None: no such capture, or it is not quarantined.
    """
    captures = services.store.captures
    item = captures.requeue(capture_id)
    if item is None:
        return None
    try:
        (outcome,) = normalizer(services, [item])
    except Exception as exc:
        outcome = exc
    if isinstance(outcome, Finished):
        captures.finish([outcome])
    else:
        captures.finish([Finished(capture_id, QUARANTINED)])
    return outcome


def replay_capture(
    services: Services, item: QuarantineItem, normalizer: CaptureNormalizer
) -> ReplayResult | None:
    """The quarantined capture of ``item`` replayed (``rerun``), said as a replay says it.

    None: ``item`` keeps no capture (an input refused at its edge, or from
    before staging): its channel replays it its own way.
    """
    capture_id = item.source_ids.get(CAPTURE_ID)
    captured = services.store.captures.get(capture_id) if isinstance(capture_id, str) else None
    if captured is None:
        return None
    return _said(rerun(services, captured.id, normalizer), captured.reference)


def _said(outcome: Finished | Exception | None, reference: str) -> ReplayResult:
    """A replay's outcome in the quarantine's words."""
    if outcome is None:
        return ReplayResult(False, "this input's capture is not in quarantine")
    if isinstance(outcome, Exception):
        return ReplayResult(False, f"the normalizer failed again: {type(outcome).__name__}")
    if outcome.outcome == QUARANTINED:
        return ReplayResult(False, "refused again")
    if outcome.outcome == "complaint":
        return ReplayResult(
            True, "complaint recorded", complaint_id=outcome.result_id, reference=reference
        )
    if outcome.outcome == "repeat":
        return ReplayResult(True, "already recorded", complaint_id=outcome.result_id)
    return ReplayResult(True, f"recorded ({outcome.outcome})")


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())[:200]
    return f"the normalizer failed: {type(error).__name__}" + (f": {text}" if text else "")
