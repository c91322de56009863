"""E-mail in two stages: the edge captures the bytes, a runner reads them.

SMTP DATA -> **capture_mail** (bytes + envelope + receipt time, one group
commit; the reply carries the reference), or an IMAP fetch -> ``mail_capture``
each -> ``captures.capture_many`` (``imap/capture.py``: the poller's sync and
the backfill) ... a normalizer runner ->
**normalize_mail_captures** (``read_mail``: parse, dedup key, auto-reply,
bounce, triage; then one group commit of the batch's complaints, each with
its capture's id and reference) -> what each capture became.

The capture's dedup key is the bytes' hash: the same DATA again (a sender
retrying after a lost reply) answers the first reference. The complaint's own
dedup key is the mail's (Message-ID and content, ``intake.dedup_key_for``), so
the same mail captured twice (over SMTP, then fetched over IMAP) is still one
complaint: the second capture finishes as a ``repeat`` of the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from channels.email.intake import (
    RAW_CONTENT_TYPE,
    MailArrival,
    MailComplaint,
    MailOutcome,
    MailResult,
    commit_mails,
    read_mail,
)
from channels.email.smtp_policy import vouches_for_peer
from gateway.lib.normalize_runner import CAPTURE_ID, NormalizeRunner, RunnerStats
from gateway.lib.services import Services
from gateway.store.captures import QUARANTINED, Capture, Captured, Finished
from normalizer.contract import Channel

# Where an arrival names the capture it was read from (evidence, quarantine).
_OUTCOMES = {
    MailOutcome.AUTO_REPLY: "event",
    MailOutcome.TRIAGED: "triaged",
    MailOutcome.BOUNCE: "bounce",
    MailOutcome.REJECTED: QUARANTINED,
}


def mail_capture(raw: bytes, received_at: datetime, source_ids: dict[str, Any]) -> Capture:
    """A mail as an edge captures it (SMTP DATA, an IMAP fetch); keyed by its bytes' hash."""
    return Capture(
        channel=Channel.EMAIL.value,
        data=raw,
        content_type=RAW_CONTENT_TYPE,
        received_at=received_at,
        dedup_key=f"email:capture:{hashlib.sha256(raw).hexdigest()}",
        source_ids=source_ids,
        # Mails recorded before staging are found by the runner, under the complaint's key.
        complaints_may_hold_key=False,
    )


def capture_mail(
    services: Services, raw: bytes, received_at: datetime, source_ids: dict[str, Any]
) -> Captured:
    """The mail durable as received: bytes fsynced, row committed; its reference."""
    return services.store.captures.capture(mail_capture(raw, received_at, source_ids))


def arrival_of(services: Services, captured: Captured) -> MailArrival:
    """The mail of a capture, as the edge received it; dated from its capture."""
    ids = captured.source_ids
    over_smtp = "smtp_peer" in ids
    return MailArrival(
        raw=services.store.captures.data_of(captured),
        received_at=captured.received_at,
        source_ids={**ids, CAPTURE_ID: captured.id},
        envelope_sender=str(ids.get("mail_from") or "") if over_smtp else None,
        durable=True,
        # Over SMTP, Authentication-Results count only from a peer that is our MX (S12).
        trust_authentication_results=(
            vouches_for_peer(services.settings, str(ids["smtp_peer"])) if over_smtp else None
        ),
    )


def normalize_mail_captures(
    services: Services, batch: Sequence[Captured]
) -> list[Finished | Exception]:
    """The runner's step for e-mail: each mail read, the batch's complaints in one commit."""
    outcomes: list[Finished | Exception | None] = []
    complaints: list[tuple[int, Captured, MailComplaint]] = []
    for captured in batch:
        try:
            read = read_mail(services, arrival_of(services, captured))
        except Exception as exc:  # this mail's failure; the others go on
            outcomes.append(exc)
            continue
        if isinstance(read, MailResult):
            outcomes.append(finished(captured, read))
            continue
        read.draft.assigned_id = captured.id
        read.draft.assigned_reference = captured.reference
        complaints.append((len(outcomes), captured, read))
        outcomes.append(None)
    committed = commit_mails(services, [read for _index, _captured, read in complaints])
    for (index, captured, _read), result in zip(complaints, committed, strict=True):
        outcomes[index] = result if isinstance(result, Exception) else finished(captured, result)
    return [outcome for outcome in outcomes if outcome is not None]


def drain_mail_captures(services: Services) -> RunnerStats:
    """Every e-mail capture waiting normalized now, in this thread (``intake imap poll --once``).

    The long-running edges leave this to the runners (``intake run``,
    ``intake normalize-worker``); a one-shot command returns with its complaints.
    """
    runner = NormalizeRunner(services, {Channel.EMAIL.value: normalize_mail_captures})
    while runner.run_once():
        pass
    return runner.stats


def settle_mail_captures(services: Services, captured: Sequence[Captured]) -> list[str | None]:
    """What each of ``captured`` became, once every e-mail capture waiting is normalized now.

    For a one-shot command that captured mail and returns with its outcomes
    (``intake imap backfill``): the runner's ``Finished.outcome`` (complaint,
    repeat, event, triaged, bounce, quarantined), or ``None`` for a capture
    still waiting (another runner holds its claim, or the store asked for a
    retry). A repeat the store answered with a complaint recorded before
    captures existed has no capture row: it is that complaint's ``repeat``.
    """
    drain_mail_captures(services)
    outcomes: list[str | None] = []
    for item in captured:
        state = services.store.captures.state_of(item.id)
        outcomes.append("repeat" if state is None else state[1])
    return outcomes


def finished(captured: Captured, result: MailResult) -> Finished:
    """What a capture became, from what ``read_mail`` or the commit made of it."""
    if result.outcome is MailOutcome.COMPLAINT:
        first = result.complaint_id == captured.id
        return Finished(captured.id, "complaint" if first else "repeat", result.complaint_id)
    return Finished(captured.id, _OUTCOMES[result.outcome], result.complaint_id)
