"""The mailroom's side of acknowledgement letters: list, print, mark posted.

``LetterSender`` -> a letter PDF in the blob store, row ``queued`` ->
**Mailroom** (the staff page ``/letters/acks``, ``pages``, and the partner
API ``/v1/acks/letters``, ``routes``, both use it) -> ``POST .../posted``
-> ``Acknowledger.record_sent`` -> ``ack.sent`` published with the posting
time: only then does the letter count as sent.

The queued letters are listed oldest first, each with the local days left
before its complaint's acknowledgement deadline; printed one by one (the
PDF as it was rendered when queued, which is also the evidence) or all at
once (joined with poppler's ``pdfunite``).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.acks.acknowledger import Acknowledger
from gateway.acks.policy import LETTER, Plan
from gateway.acks.senders import Sent
from gateway.acks.texts import languages_for
from gateway.lib.services import Services
from gateway.store.acks import QUEUED, SENT, AckRecord
from normalizer.errors import InputRejected, OurFailure

log = logging.getLogger("intake.acks")


class NoSuchLetter(InputRejected, LookupError):
    """No acknowledgement letter has this id."""


class NotQueued(InputRejected):
    """The letter is not waiting for the mailroom (nor already posted)."""


class ComplaintMissing(OurFailure):
    """A queued letter whose complaint cannot be loaded: ours to look into, not the mailroom's."""


@dataclass(frozen=True)
class QueuedLetter:
    """A letter waiting to be posted, with what the mailroom needs to see of it."""

    record: AckRecord
    name: str | None
    address: list[str]
    # The complaint's acknowledgement deadline (None if the complaint is gone).
    due_at: datetime | None
    # Local days until that deadline: 0 is today, negative is late.
    days_left: int | None


class Mailroom:
    """The mailroom's side of acknowledgement letters: list, print, mark posted.

    One path for the staff page and the partner API, so a letter posted
    from either is recorded the same way: ``Acknowledger.record_sent``,
    which publishes ``ack.sent`` with the posting time.
    """

    def __init__(self, services: Services, acknowledger: Acknowledger) -> None:
        self.services = services
        self.acknowledger = acknowledger
        self.zone = ZoneInfo(services.settings.timezone)

    def queued(self, now: datetime) -> list[QueuedLetter]:
        """Letters to post, oldest first, each with its days left before the deadline."""
        complaints = self.services.store.complaints
        found = []
        for record in self.acknowledger.acks.letters(QUEUED):
            message = complaints.get_by_reference(record.reference)
            due_at = message.ack_due_at if message else None
            found.append(
                QueuedLetter(
                    record=record,
                    name=message.customer.name if message else None,
                    address=[line for line in (record.recipient or "").splitlines() if line],
                    due_at=due_at,
                    days_left=self._days_between(now, due_at) if due_at else None,
                )
            )
        return found

    def _days_between(self, now: datetime, due_at: datetime) -> int:
        return (due_at.astimezone(self.zone).date() - now.astimezone(self.zone).date()).days

    def letter(self, ack_id: str) -> AckRecord:
        record = self.acknowledger.acks.by_id(ack_id)
        if record is None or record.method != LETTER:
            raise NoSuchLetter(f"no acknowledgement letter {ack_id}")
        return record

    def pdf(self, ack_id: str) -> tuple[AckRecord, bytes]:
        """The letter as it was rendered when queued (the same bytes become the evidence)."""
        record = self.letter(ack_id)
        return record, self.services.store.blobs.get(str(record.document))

    def all_queued_pdf(self) -> bytes | None:
        """Every queued letter in one PDF, to print them at once; None when there is none."""
        blobs = self.services.store.blobs
        documents = [blobs.get(str(r.document)) for r in self.acknowledger.acks.letters(QUEUED)]
        return combined_pdf(documents) if documents else None

    def mark_posted(self, ack_id: str, posted_at: datetime) -> AckRecord:
        """It went out: ``ack.sent`` with ``posted_at``. Posting it twice changes nothing."""
        record = self.letter(ack_id)
        if record.status == SENT:
            return record
        if record.status != QUEUED:
            raise NotQueued(f"letter {ack_id} is {record.status}, not queued")
        message = self.services.store.complaints.get_by_reference(record.reference)
        if message is None:
            log.error(
                "letter %s is queued but complaint %s cannot be loaded", ack_id, record.reference
            )
            raise ComplaintMissing(
                f"letter {ack_id}: its complaint {record.reference} cannot be loaded; "
                "it was not recorded as posted"
            )
        pdf = self.services.store.blobs.get(str(record.document))
        plan = Plan(LETTER, str(record.recipient), languages_for(message))
        sent = Sent(evidence=pdf, content_type="application/pdf", document=record.document)
        return self.acknowledger.record_sent(message, plan, sent, posted_at)


def mailroom_for(services: Services) -> Mailroom:
    """The ``Mailroom`` of a web process (it sends nothing itself: no senders)."""
    return Mailroom(services, Acknowledger(services, senders={}))


def combined_pdf(documents: list[bytes]) -> bytes:
    """Our own letters joined into one PDF with poppler's ``pdfunite`` (poppler reads scans too)."""
    with tempfile.TemporaryDirectory(prefix="intake-letters-") as folder:
        paths = []
        for index, data in enumerate(documents):
            path = Path(folder) / f"{index:04d}.pdf"
            path.write_bytes(data)
            paths.append(str(path))
        target = Path(folder) / "all.pdf"
        # poppler, as for scans; our own files, no shell.
        command = ["pdfunite", *paths, str(target)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603
        return target.read_bytes()
