"""``Tally``: what a sync or a backfill did with the mail it fetched, for logs and the shell.

IMAP folder -> fetch -> ``capture.capture_fetched`` -> **Tally.count_capture**
(a sync stops there: the runners make the complaints) ... a backfill drains
the runner in process (``staged.settle_mail_captures``) -> **Tally.count_outcome**
for what each capture became.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.captures import QUARANTINED, Captured
from normalizer.errors import OurFailure

# Our own failures: the whole batch stops, nothing more is acknowledged.
OUR_FAILURES: tuple[type[Exception], ...] = (OurFailure,)

# What a runner made of a capture (``Finished.outcome``) -> the ``Tally`` field counting it.
_OUTCOME_FIELDS = {
    "complaint": "complaints",
    "repeat": "complaints",
    "event": "auto_replies",
    "triaged": "triaged",
    "bounce": "bounces",
    QUARANTINED: "quarantined",
}


@dataclass
class Tally:
    # Every mail captured (the runner makes them complaints); ``repeated``: captured before.
    captured: int = 0
    repeated: int = 0
    # Failed on a bug of ours: left where they were, retried later.
    failed: int = 0
    # What a backfill's captures became once normalized.
    complaints: int = 0
    # Complaints recorded before this run: an earlier capture's, or found by the
    # complaint's own dedup key (a complaint recorded before captures existed).
    known: int = 0
    auto_replies: int = 0
    quarantined: int = 0
    # Not complaints (spam, marketing, thanks...), kept for staff to sort.
    triaged: int = 0
    # Bounces of our acknowledgements (kept as evidence, the next method tried).
    bounces: int = 0
    # Still waiting for a runner (another runner holds it, or the store asked for a retry).
    pending: int = 0

    def count_capture(self, captured: Captured | None) -> None:
        """One fetched mail's capture; ``None``: it failed on a bug of ours."""
        if captured is None:
            self.failed += 1
            return
        self.captured += 1
        self.repeated += 0 if captured.created else 1

    def count_outcome(self, captured: Captured, outcome: str | None) -> None:
        """What ``captured`` became (``Finished.outcome``); ``None``: not normalized yet."""
        if outcome is None:
            self.pending += 1
            return
        name = _OUTCOME_FIELDS[outcome]
        setattr(self, name, getattr(self, name) + 1)
        # A complaint is new only when this run's new capture made it.
        if name == "complaints" and not (captured.created and outcome == "complaint"):
            self.known += 1

    @property
    def total(self) -> int:
        """Mails fetched: captured, or failed."""
        return self.captured + self.failed

    def describe_captures(self) -> str:
        """What a sync did: it captures, the runner makes the complaints."""
        return f"{self.captured} captured ({self.repeated} already captured), {self.failed} failed"

    def describe(self) -> str:
        """What a backfill did: its captures, then what they are once normalized."""
        waiting = f", {self.pending} still waiting for a runner" if self.pending else ""
        return (
            f"{self.describe_captures()}; "
            f"{self.complaints} complaint(s) ({self.known} already recorded), "
            f"{self.auto_replies} auto-reply(ies), {self.bounces} acknowledgement bounce(s), "
            f"{self.triaged} not complaint(s) to sort, {self.quarantined} quarantined{waiting}"
        )
