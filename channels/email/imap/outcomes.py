"""One fetched IMAP message -> ``ingest_mail`` (a backfill), and ``Tally``.

IMAP folder (read-only) -> fetch -> **here** -> store commit (by
``channels.email.intake``). ``Tally`` counts what a sync (captures) or a
backfill (complaints, events, quarantine) did, for logs and the command line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from channels.email.imap.mailbox import FetchedMessage
from channels.email.intake import MailArrival, MailOutcome, MailResult, ingest_mail
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from normalizer.errors import OurFailure

log = logging.getLogger("intake.imap")

# Our own failures: the whole batch stops, nothing more is acknowledged.
OUR_FAILURES: tuple[type[Exception], ...] = (OurFailure,)


@dataclass
class Tally:
    # Captured by a sync (the runner makes them complaints); ``repeated``: captured before.
    captured: int = 0
    complaints: int = 0
    repeated: int = 0
    auto_replies: int = 0
    quarantined: int = 0
    # Not complaints (spam, marketing, thanks...), kept for staff to sort.
    triaged: int = 0
    # Bounces of our acknowledgements (kept as evidence, the next method tried).
    bounces: int = 0
    # Failed on a bug of ours: left where they were, retried later.
    failed: int = 0

    def count(self, result: MailResult) -> None:
        if result.outcome is MailOutcome.COMPLAINT:
            self.complaints += 1
            self.repeated += 0 if result.created else 1
        elif result.outcome is MailOutcome.AUTO_REPLY:
            self.auto_replies += 1
        elif result.outcome is MailOutcome.TRIAGED:
            self.triaged += 1
        elif result.outcome is MailOutcome.BOUNCE:
            self.bounces += 1
        else:
            self.quarantined += 1

    @property
    def total(self) -> int:
        return (
            self.captured
            + self.complaints
            + self.auto_replies
            + self.triaged
            + self.bounces
            + self.quarantined
            + self.failed
        )

    def describe_captures(self) -> str:
        """What a sync did: it captures, the runner makes the complaints."""
        return f"{self.captured} captured ({self.repeated} already captured), {self.failed} failed"

    def describe(self) -> str:
        return (
            f"{self.complaints} complaint(s) ({self.repeated} already recorded), "
            f"{self.auto_replies} auto-reply(ies), {self.bounces} acknowledgement bounce(s), "
            f"{self.quarantined} quarantined, "
            f"{self.failed} failed"
        )


def ingest_fetched(
    services: Services, folder: str, uidvalidity: int, message: FetchedMessage
) -> MailResult | None:
    """Commit one message; ``None`` when a bug of ours failed on it (logged).

    Store and normalizer failures (``OUR_FAILURES``) propagate: they would
    fail every other message too, so the caller stops and retries later.
    Anything else is particular to this message: it must not block the rest.
    """
    arrival = MailArrival(
        raw=message.raw,
        received_at=message.internal_date,
        source_ids={
            "imap_uidvalidity": uidvalidity,
            "imap_uid": message.uid,
            "imap_folder": folder,
        },
    )
    try:
        result = ingest_mail(services, arrival)
    except OUR_FAILURES:
        raise
    except Exception:
        log.exception(
            "UID %s in %s could not be processed; it is left in place", message.uid, folder
        )
        return None
    log_result(message.uid, result)
    return result


def log_result(uid: int, result: MailResult) -> None:
    """One line per mail of a sync or backfill, with the complaint id when there is one."""
    if result.outcome is MailOutcome.COMPLAINT and result.complaint_id:
        with complaint_context(result.complaint_id):
            log.info(
                "UID %s: %s complaint %s",
                uid,
                "new" if result.created else "already recorded",
                result.reference,
            )
    elif result.outcome is MailOutcome.REJECTED:
        log.warning("UID %s quarantined: %s", uid, result.reason_code)
    elif result.outcome is MailOutcome.TRIAGED:
        log.info("UID %s: not a complaint, kept for staff to sort", uid)
    elif result.outcome is MailOutcome.BOUNCE:
        log.info("UID %s: bounce of the acknowledgement of %s", uid, result.reference)
    else:
        log.info("UID %s: auto-reply, stored as an event", uid)
