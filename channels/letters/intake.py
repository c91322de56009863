"""Letter intake shared by the upload page, the API and the hot folder.

``page`` / ``api`` / ``hotfolder`` / ``replay`` -> **here** (checks, the
scans and the complaint via ``channels.handoff``) -> ``Store.letters`` (the
``pending`` letter row) -> the OCR ``worker``.

One letter (one or more scanned files, pages in order) in, one outcome out:
accepted (a complaint with a reference, its outbox row held until OCR is
done, and a ``pending`` letter row: the OCR work queue), or refused
(``ScanRejected``: each file is quarantined with the reason and a manifest
of the whole letter, so ``channels.letters.replay`` can run it again once
the cause is fixed; the caller answers in its own terms). Our own failures
raise ``StoreUnavailable``.

The evidence is a manifest of the files (name, type, sha256) with what the
mailroom typed; the scans themselves are stored as attachments, fsynced
before any row points at them. Dedup: the hashes of the files, in order,
so the same scans sent twice are the same letter; per partner for the API
(``letter_dedup_key``): one partner sending another's scans gets a letter of
its own, never the other's ids.

The complaint and the letter row are committed one after the other; a
letter left without its row by a crash in between is queued again from its
manifest (``requeue_orphans``, run by the OCR workers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from channels.handoff import hand_off
from config.settings import Settings
from gateway.lib.logs import complaint_context, mask_personal_data
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.intake import guarded
from gateway.store.letters import PENDING, LetterQueue, LetterRow
from normalizer.contact import build_customer
from normalizer.contract import Channel, ComplaintMessage
from normalizer.draft import AttachmentDraft, ComplaintDraft, RawInput
from normalizer.errors import InputRejected
from normalizer.ocr import ScanLimits, ScanRejected, inspect_scan
from normalizer.ocr.checks import ACCEPTED, ScanInfo

log = logging.getLogger("intake.letters")

MANIFEST_TYPE = "application/vnd.cashplus.letter-manifest+json"
# The complaint waits this long for its OCR at most; past it, it is published
# without text rather than never (the relay honours available_at).
OCR_HOLD = timedelta(days=1)
PENDING_SUBJECT = "Courrier postal : lecture (OCR) en cours"


@dataclass(frozen=True)
class LetterFile:
    name: str | None
    data: bytes
    declared_type: str | None = None


@dataclass(frozen=True)
class LetterUpload:
    files: list[LetterFile]
    source: str  # page, api, hotfolder
    received_on: date | None = None
    sender_name: str | None = None
    sender_address: str | None = None
    uploaded_by: str | None = None  # staff user id
    source_ids: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class LetterAccepted:
    letter_id: str
    reference: str
    complaint_id: str
    created: bool
    pages: int


def scan_limits(settings: Settings) -> ScanLimits:
    return ScanLimits(
        max_bytes=settings.letter_max_bytes,
        max_pages=settings.letter_max_pages,
        max_pixels=settings.letter_max_pixels,
        timeout=settings.ocr_timeout,
        memory_mb=settings.ocr_memory_mb,
    )


def received_at_for(received_on: date | None, zone: str, now: datetime) -> datetime:
    """The legal clock: the day the mailroom received the letter, not the upload time."""
    local_zone = ZoneInfo(zone)
    today = now.astimezone(local_zone).date()
    if received_on is None or received_on == today:
        return now
    if received_on > today:
        raise ScanRejectedDate(received_on)
    # Midday local time: the date is what counts, and midday survives any offset change.
    return datetime.combine(received_on, time(12), tzinfo=local_zone).astimezone(UTC)


def check_received_on(received_on: date | None, zone: str, max_age: timedelta) -> None:
    """A date a person typed (API, upload page) at most ``max_age`` in the past.

    The hot folder's dated folders and replays are not bounded here: the
    first are the mailroom's own filing, the second were checked on arrival.
    """
    if received_on is None:
        return
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    if received_on < today - max_age:
        raise ScanRejectedDate(received_on, f"is more than {max_age.days} days in the past")


class ScanRejectedDate(InputRejected, ValueError):
    def __init__(self, received_on: date, problem: str = "is in the future") -> None:
        super().__init__(f"received_on: {received_on.isoformat()} {problem}")


def check_files(upload: LetterUpload, limits: ScanLimits) -> list[ScanInfo]:
    """Every file checked (type, size, structure); the page cap applies to the whole letter."""
    if not upload.files:
        raise ScanRejected("empty")
    infos = []
    for item in upload.files:
        try:
            infos.append(inspect_scan(item.data, item.name, limits))
        except ScanRejected as exc:
            exc.file_name = item.name
            raise
    pages = sum(info.pages for info in infos)
    if pages > limits.max_pages:
        raise ScanRejected("too_many_pages", pages=pages, limit=limits.max_pages)
    return infos


def _manifest(upload: LetterUpload, infos: list[ScanInfo], received_at: datetime) -> bytes:
    document = {
        "files": [
            {
                "name": item.name,
                "declared_type": item.declared_type,
                "content_type": info.mime,
                "pages": info.pages,
                "size": len(item.data),
                "sha256": hashlib.sha256(item.data).hexdigest(),
            }
            for item, info in zip(upload.files, infos, strict=True)
        ],
        "received_at": received_at.isoformat(),
        "sender_name": upload.sender_name,
        "sender_address": upload.sender_address,
        "source": upload.source,
        "uploaded_by": upload.uploaded_by,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def letter_key(upload: LetterUpload) -> str:
    digest = hashlib.sha256()
    for item in upload.files:
        digest.update(hashlib.sha256(item.data).digest())
    return digest.hexdigest()


def letter_dedup_key(upload: LetterUpload, key: str) -> str:
    """The complaint's dedup key: the scans, and for the API the partner that sent them.

    The mailroom (upload page, hot folder) is one sender: the same scans by
    either are one letter, under the key every letter had before partners
    were told apart (``letter:<scans>``). A partner's letters are its own
    (``letter:api:<key name>:<scans>``), so another partner's bytes never
    answer with the first one's ids. A partner's letter recorded before then
    is under the old key: ``record_letter`` still finds it for that partner.
    """
    client = upload.source_ids.get("api_client") if upload.source == "api" else None
    return f"letter:api:{client}:{key}" if client else f"letter:{key}"


def _legacy_api_key(services: Services, upload: LetterUpload, key: str) -> str | None:
    """The old key of this partner's letter with these scans, if it has one (see above)."""
    client = upload.source_ids.get("api_client") if upload.source == "api" else None
    if not client:
        return None
    legacy = f"letter:{key}"
    found = services.store.complaints.find_by_dedup_key(legacy)
    return legacy if found is not None and found.evidence.api_client == client else None


def accept_letter(services: Services, upload: LetterUpload) -> LetterAccepted:
    """Check, store and queue one letter (blocking); raises ``ScanRejected`` after quarantine."""
    try:
        infos = check_files(upload, scan_limits(services.settings))
    except ScanRejected as exc:
        _quarantine(services, upload, exc)
        raise
    return record_letter(services, upload, infos, datetime.now(UTC))


def record_letter(
    services: Services, upload: LetterUpload, infos: list[ScanInfo], arrived_at: datetime
) -> LetterAccepted:
    """Store and queue a checked letter; the same scans again give the letter already there.

    ``arrived_at``: when the upload reached us, the legal clock's start when
    the mailroom gave no date (a quarantine replay passes the original time).
    """
    received_at = received_at_for(upload.received_on, services.settings.timezone, arrived_at)
    key = letter_key(upload)
    dedup_key = _legacy_api_key(services, upload, key) or letter_dedup_key(upload, key)
    raw = RawInput(
        channel=Channel.LETTER,
        data=_manifest(upload, infos, received_at),
        content_type=MANIFEST_TYPE,
        received_at=received_at,
        dedup_key=dedup_key,
        source_ids={"upload_id": f"sha256:{key}", **upload.source_ids},
    )
    hold_until = datetime.now(UTC) + OCR_HOLD
    message, created = _record(services, raw, _draft(upload, infos, received_at), hold_until)
    # A second transaction: a crash right here leaves a held complaint with no
    # letter row, which ``requeue_orphans`` finds and queues from its evidence.
    row = _letter_row(message, infos, upload.source, upload.uploaded_by)
    letter = services.store.letters.add(row)
    return LetterAccepted(letter.id, message.reference, message.id, created, letter.pages)


def requeue_orphans(services: Services, older_than: timedelta) -> int:
    """Queue the letters whose complaint was recorded but whose letter row never was.

    The complaint (held in the outbox) and the letter row are two commits;
    a process killed between them would leave the complaint to be published
    unread when its hold ran out. Its manifest (the evidence) says which
    stored scans to read, so the row is rebuilt from it. ``older_than``
    keeps clear of uploads still between their two commits. One letter whose
    evidence cannot be turned into a job is logged and passed over: it must
    not keep the letters after it from their OCR. The database down ends the
    sweep (the next one tries again). Returns how many were queued.
    """
    queue = services.store.letters
    queued = 0
    for message in queue.held_without_letter(datetime.now(UTC) - older_than):
        with complaint_context(message.id):
            queued += _requeue_orphan(services, queue, message)
    return queued


def _requeue_orphan(services: Services, queue: LetterQueue, message: ComplaintMessage) -> bool:
    """True if the orphan was queued; False, logged, if no job could be built for it."""
    try:
        row = letter_row_from_evidence(services, message)
        queue.add(row)
    except StoreUnavailable:  # the database itself: the whole sweep
        raise
    except Exception as exc:  # a manifest we cannot read (or a bug): this letter only
        detail = mask_personal_data(f"{type(exc).__name__}: {exc}")[:200]
        log.error(
            "letter %s has no OCR job and none can be built from its evidence (%s); "
            "it will be published unread when its hold ends",
            message.reference,
            detail,
        )
        return False
    log.warning("letter %s had no OCR job: queued from its evidence", message.reference)
    return True


def letter_row_from_evidence(services: Services, message: ComplaintMessage) -> LetterRow:
    """The OCR job of a recorded letter, rebuilt from its stored manifest."""
    manifest = json.loads(services.store.blobs.get(message.evidence.sha256))
    infos = [
        ScanInfo(
            mime=item["content_type"],
            kind=ACCEPTED[item["content_type"]][0],
            pages=int(item["pages"]),
            max_pixels=0,
        )
        for item in manifest["files"]
    ]
    return _letter_row(message, infos, manifest["source"], manifest.get("uploaded_by"))


def _draft(upload: LetterUpload, infos: list[ScanInfo], received_at: datetime) -> ComplaintDraft:
    """The complaint before OCR: no text yet, the scans as attachments, the sender if typed."""
    return ComplaintDraft(
        channel=Channel.LETTER,
        received_at=received_at,
        body="",
        subject=PENDING_SUBJECT,
        customer=build_customer(
            name=upload.sender_name, postal_address=upload.sender_address, strict=False
        ),
        attachments=[
            AttachmentDraft(
                name=item.name,
                data=item.data,
                declared_type=item.declared_type,
                content_type=info.mime,
            )
            for item, info in zip(upload.files, infos, strict=True)
        ],
    )


def _letter_row(
    message: ComplaintMessage, infos: list[ScanInfo], source: str, uploaded_by: str | None
) -> LetterRow:
    """The OCR job: which stored scans to read, in order, with their kind and page count."""
    files = [
        {
            "name": attachment.name,
            "sha256": attachment.sha256,
            "size": attachment.size,
            "mime": attachment.content_type,
            "kind": info.kind,
            "pages": info.pages,
        }
        for attachment, info in zip(message.attachments, infos, strict=True)
    ]
    return LetterRow(
        id=str(uuid.uuid4()),
        complaint_id=message.id,
        reference=message.reference,
        status=PENDING,
        source=source,
        files=files,
        pages=sum(info.pages for info in infos),
        uploaded_by=uploaded_by,
    )


def _record(
    services: Services, raw: RawInput, draft: ComplaintDraft, hold_until: datetime
) -> tuple[ComplaintMessage, bool]:
    """The complaint committed with its outbox row held until OCR releases it.

    A letter uploaded again gets the complaint recorded the first time (the
    store's dedup on the scans' sha256).
    """
    result = hand_off(services, raw, draft, available_at=hold_until)
    if result.created:
        with complaint_context(result.message.id):
            log.info("letter %s recorded, waiting for OCR", result.message.reference)
    return result.message, result.created


def refused_manifest(upload: LetterUpload) -> bytes:
    """What replaying a refused letter needs besides the scans: order, names, the typed fields."""
    document = {
        "files": [
            {
                "name": item.name,
                "declared_type": item.declared_type,
                "sha256": hashlib.sha256(item.data).hexdigest(),
            }
            for item in upload.files
        ],
        "received_on": upload.received_on.isoformat() if upload.received_on else None,
        "sender_name": upload.sender_name,
        "sender_address": upload.sender_address,
        "source": upload.source,
        "uploaded_by": upload.uploaded_by,
        "source_ids": upload.source_ids,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, default=str).encode()


def _quarantine(services: Services, upload: LetterUpload, exc: ScanRejected) -> None:
    """One item per file (each file's own bytes), all pointing at the letter's manifest.

    The manifest is stored once in the blob store: replaying any of the items
    rebuilds the whole letter, pages in order, with its date and sender.
    """
    manifest = guarded(lambda: services.store.blobs.put(refused_manifest(upload)))
    for position, item in enumerate(upload.files or [LetterFile(name=None, data=b"")]):
        services.store.complaints.quarantine(
            channel=Channel.LETTER.value,
            data=item.data,
            content_type=item.declared_type or "application/octet-stream",
            reason_code=exc.code,
            reason=exc.message("fr"),
            source_ids={
                "file_name": item.name,
                "source": upload.source,
                **upload.source_ids,
                "letter_manifest": manifest.sha256,
                "position": position,
                "refused_file": exc.file_name,
            },
        )
