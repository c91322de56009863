"""Replaying a quarantined input through its channel.

channel edge --(bad input)--> ``ComplaintStore.quarantine`` (raw bytes in
the blob store, row with the reason) -> **here**: an operator looks at the
reason, fixes the cause (a normalizer bug, a too-strict check), and replays
the item. The replay re-runs the stored bytes through the channel's own
``replay`` hook (``Component.replay``), which uses the channel's own
parsing and the normal durable hand-off; a replayed item is marked resolved
with the complaint it became. An item that fails again stays unresolved.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store.quarantine import QuarantineItem, ReplayResult

log = logging.getLogger("intake.ops")


def replayers() -> dict[str, Any]:
    """Quarantine channel name -> the replay hook of the adapter that handles it."""
    from channels import CHANNELS

    table: dict[str, Any] = {}
    for adapter in CHANNELS:
        if adapter.replay is not None:
            for name in adapter.replays or (adapter.name,):
                table[name] = adapter.replay
    return table


def replay(services: Services, item: QuarantineItem) -> ReplayResult:
    """Run ``item`` through its channel again; mark it resolved if it went through."""
    if item.resolved_at is not None:
        return ReplayResult(True, "already resolved", complaint_id=item.complaint_id)
    if not item.whole:  # refused input kept as its head: any channel, never parsed cut
        return ReplayResult(False, item.not_whole())
    hook = replayers().get(item.channel)
    if hook is None:
        return ReplayResult(False, f"inputs of channel {item.channel!r} cannot be replayed")
    result: ReplayResult = hook(services, item)
    if result.ok:
        quarantine = services.store.quarantine
        for item_id in (item.id, *result.also_resolves):
            quarantine.resolve(item_id, result.complaint_id)
        with complaint_context(result.complaint_id or "-"):
            log.info("quarantined %s input %s replayed: %s", item.channel, item.id, result.detail)
    else:
        log.warning(
            "quarantined %s input %s still refused: %s", item.channel, item.id, result.detail
        )
    return result
