"""Mailbox backlog import: an export of the old inbox (mbox or Maildir) becomes complaints.

Flow: mbox file / Maildir folder -> **channels.email.backlog** -> groups of
``staged.mail_capture`` (the bytes' hash as the key, as every e-mail edge)
in one ``captures.capture_many`` commit each -> the runner drained in process
(``staged.settle_mail_captures``) -> complaints, events, quarantine items.
``intake import mbox|maildir PATH`` drives it with a progress bar.
Idempotent: the same bytes find their capture; a complaint recorded before
(another export, or before captures existed) is found by the runner through
the complaint's own dedup key (a ``repeat``); a message quarantined before
(same sha256) is not captured again, so a second run creates nothing.

Received time (the legal clock starts when Cash Plus received the mail, not
when the customer wrote it, and not when we import it). The first of these
that is present and plausible wins:

1. mbox only: the date of the ``From `` separator line, which the delivering
   agent (or the exporting client) writes at delivery. It usually has no
   zone; it is read in ``INTAKE_TIMEZONE``, the zone of Cash Plus's servers.
2. the date of the most recently added ``Received`` header (the top one:
   every hop adds its own above the others, so the top one is the hop that
   delivered into Cash Plus's mailbox).
3. the ``Date`` header (when the sender says it sent the mail: never later
   than receipt, so the deadlines computed from it err on the safe side).
4. Maildir only: the delivery time at the start of the file name; export
   tools often rename files, so it comes after the headers.
5. the import time, as a last resort.

"Plausible" means not before 2000 and not more than a day in the future; a
time slightly in the future (clock skew) is taken as now.
"""

from __future__ import annotations

import hashlib
import mailbox
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from channels.email.staged import mail_capture, settle_mail_captures
from gateway.lib.services import Services
from gateway.store.captures import QUARANTINED, Captured
from normalizer.contract import Channel
from normalizer.email.headers import parse_date

EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
_FROM_LINE_FORMATS = ("%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S %z %Y", "%a %b %d %H:%M %Y")
# Mails captured in one commit (and normalized in one drain), at most.
GROUP_MAILS = 100
GROUP_BYTES = 16 * 1024 * 1024
_MAILDIR_TIME = re.compile(r"^(\d{9,11})(?:\.|$)")
Candidates = list[tuple[str, datetime | None]]


@dataclass(frozen=True)
class MailboxItem:
    key: str
    raw: bytes
    received_at: datetime
    received_from: str  # which rule decided received_at


@dataclass(frozen=True)
class Backlog:
    kind: str
    path: Path
    count: int
    items: Iterator[MailboxItem]


# -- received time -------------------------------------------------------------
def from_line_time(line: bytes, zone: ZoneInfo) -> datetime | None:
    """The date of an mbox ``From sender date`` line (zone-less dates read in ``zone``)."""
    parts = line.decode("ascii", "replace").split(None, 2)
    if len(parts) < 3 or parts[0] != "From":
        return None
    text = " ".join(parts[2].split())
    for pattern in _FROM_LINE_FORMATS:
        try:
            moment = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def header_times(raw: bytes) -> tuple[datetime | None, datetime | None]:
    """(the top ``Received`` header's date, the ``Date`` header) of a raw message."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    received = None
    for value in headers.get_all("Received") or []:
        received = parse_date(str(value).rpartition(";")[2].strip())
        if received is not None:
            break
    date = headers.get("Date")
    return received, parse_date(str(date)) if date else None


def maildir_delivery_time(key: str) -> datetime | None:
    match = _MAILDIR_TIME.match(key)
    return datetime.fromtimestamp(int(match.group(1)), UTC) if match else None


def choose_received_at(
    candidates: Candidates, now: datetime, fallback: str = "import time"
) -> tuple[datetime, str]:
    """The first plausible candidate, capped at ``now``; else ``now`` (labelled ``fallback``)."""
    for label, moment in candidates:
        if moment is None or not EARLIEST_PLAUSIBLE <= moment <= now + FUTURE_TOLERANCE:
            continue
        return min(moment, now), label
    return now, fallback


def _item(key: str, raw: bytes, first: Candidates, last: Candidates) -> MailboxItem:
    received, date = header_times(raw)
    candidates = [*first, ("Received header", received), ("Date header", date), *last]
    received_at, label = choose_received_at(candidates, datetime.now(UTC))
    return MailboxItem(key=key, raw=raw, received_at=received_at, received_from=label)


# -- reading mailboxes -----------------------------------------------------------
def open_backlog(kind: str, path: Path, zone: ZoneInfo) -> Backlog:
    """Open an mbox file or a Maildir folder (its ``cur`` and ``new``; not subfolders)."""
    if kind == "mbox":
        mbox = mailbox.mbox(path, create=False)
        return Backlog(kind, path, len(mbox), _mbox_items(mbox, zone))
    if not ((path / "cur").is_dir() or (path / "new").is_dir()):
        raise mailbox.NoSuchMailboxError(f"{path} has no cur/ or new/ folder")
    box = mailbox.Maildir(path, factory=None, create=False)
    return Backlog(kind, path, len(box), _maildir_items(box))


def _mbox_items(box: mailbox.mbox, zone: ZoneInfo) -> Iterator[MailboxItem]:
    try:
        for key in box.iterkeys():
            stored = box.get_bytes(key, from_=True)
            from_line, _newline, raw = stored.partition(b"\n")
            yield _item(str(key), raw, [("mbox From line", from_line_time(from_line, zone))], [])
    finally:
        box.close()


def _maildir_items(box: mailbox.Mailbox) -> Iterator[MailboxItem]:
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        yield _item(str(key), raw, [], [("Maildir file name", maildir_delivery_time(str(key)))])


# -- importing ---------------------------------------------------------------------
@dataclass
class ImportSummary:
    new: int = 0
    repeated: int = 0
    auto_replies_new: int = 0
    auto_replies_repeated: int = 0
    rejected: int = 0
    already_quarantined: int = 0
    # Not complaints (spam, marketing, thanks...), kept for staff to sort.
    triaged: int = 0
    # Captured, not normalized yet: a runner of ``intake run`` holds them.
    waiting: int = 0

    def count(self, captured: Captured, outcome: str | None) -> None:
        """What a capture became (``Finished.outcome``); new only from a new capture."""
        fresh = captured.created
        if outcome is None:
            self.waiting += 1
        elif outcome in ("complaint", "repeat"):
            # "repeat": the complaint was recorded before (another export, before captures).
            self.new += fresh and outcome == "complaint"
            self.repeated += not (fresh and outcome == "complaint")
        elif outcome in ("event", "bounce"):
            # A bounce of an acknowledgement is an automatic message too (kept as evidence).
            self.auto_replies_new += fresh
            self.auto_replies_repeated += not fresh
        elif outcome == "triaged":
            self.triaged += 1
        elif outcome == QUARANTINED:
            self.rejected += 1
            self.already_quarantined += not fresh

    @property
    def total(self) -> int:
        return (
            self.new
            + self.repeated
            + self.auto_replies_new
            + self.auto_replies_repeated
            + self.triaged
            + self.rejected
            + self.waiting
        )

    def line(self) -> str:
        return (
            f"{self.total} message(s): complaints {self.new} new, {self.repeated} repeated; "
            f"auto-replies {self.auto_replies_new} new, {self.auto_replies_repeated} repeated; "
            f"not complaints (to sort) {self.triaged}; "
            f"rejected {self.rejected} ({self.already_quarantined} already in quarantine)"
            + (f"; waiting for a runner {self.waiting}" if self.waiting else "")
        )


def already_quarantined(services: Services, raw: bytes) -> bool:
    """Whether these exact bytes were refused before (a rejection depends only on them)."""
    digest = hashlib.sha256(raw).hexdigest()
    return services.store.quarantine.holds(Channel.EMAIL.value, digest)


def import_backlog(
    services: Services,
    backlog: Backlog,
    summary: ImportSummary,
    advance: Callable[[int], object] = lambda _n: None,
) -> ImportSummary:
    """Capture every message of ``backlog``, normalize, count into ``summary``; failures raise.

    Groups of mails are captured in one commit each (``staged.mail_capture``,
    the key every e-mail edge uses), then the runner is drained in process
    (``staged.settle_mail_captures``): when this returns, each mail is a
    complaint, an event or a quarantine item. A re-run is safe.
    """
    source = str(backlog.path.resolve())
    group: list[MailboxItem] = []
    size = 0
    for item in backlog.items:
        if already_quarantined(services, item.raw):
            summary.rejected += 1
            summary.already_quarantined += 1
            advance(1)
            continue
        group.append(item)
        size += len(item.raw)
        if len(group) >= GROUP_MAILS or size >= GROUP_BYTES:
            _import_group(services, source, backlog.kind, group, summary)
            advance(len(group))
            group, size = [], 0
    if group:
        _import_group(services, source, backlog.kind, group, summary)
        advance(len(group))
    return summary


def _import_group(
    services: Services, source: str, kind: str, group: list[MailboxItem], summary: ImportSummary
) -> None:
    committed = services.store.captures.capture_many(
        [
            mail_capture(
                item.raw,
                item.received_at,
                {
                    "import_path": source,
                    "import_format": kind,
                    "import_key": item.key,
                    "received_from": item.received_from,
                },
            )
            for item in group
        ]
    )
    captured: list[Captured] = []
    for answer in committed:
        if isinstance(answer, Exception):
            raise answer  # what was committed stays so: a re-run finds it
        captured.append(answer)
    for item, outcome in zip(captured, settle_mail_captures(services, captured), strict=True):
        summary.count(item, outcome)
