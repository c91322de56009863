"""Replaying a refused letter: the same checks, the same record, the same OCR queue.

``gateway.ops.quarantine.replay`` -> **here** -> ``check_files`` with the
limits in force now -> ``record_letter`` (the complaint held for OCR, a
``pending`` letter row for the OCR workers), exactly as an upload.

A refusal keeps one quarantine item per file plus a manifest of the whole
letter (``intake.refused_manifest``: files in page order, the date the
mailroom gave, the sender, who uploaded it). Replaying any item rebuilds
the whole letter from it and resolves the other files' items with it.
Items kept before that manifest existed are replayed as a one-file letter
dated from when they were refused.

Dedup is the letter's own key (the scans' sha256, in order): replaying
twice, or after the same scans were uploaded again, gives the letter
already recorded, never a second complaint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from channels.letters.hotfolder import HOT_FOLDER_ID, settle_replayed
from channels.letters.intake import (
    LetterFile,
    LetterUpload,
    ScanRejectedDate,
    check_files,
    record_letter,
    scan_limits,
)
from gateway.lib.services import Services
from gateway.store.intake import guarded
from gateway.store.quarantine import QuarantineItem, ReplayResult
from normalizer.contract import Channel
from normalizer.ocr import ScanRejected

log = logging.getLogger("intake.letters.replay")

UNTYPED = "application/octet-stream"
# What an item kept before the manifest existed tells about its upload.
_LEGACY_IDS = ("api_client", "staff_user", "file_name")


@dataclass(frozen=True)
class StoredLetter:
    upload: LetterUpload
    # The manifest's sha256 (None for an item kept before manifests).
    manifest: str | None
    file_hashes: list[str]


def replay_letter(services: Services, item: QuarantineItem) -> ReplayResult:
    """The refused letter ``item`` belongs to, checked and recorded again."""
    stored = guarded(lambda: stored_letter(services, item))
    try:
        infos = check_files(stored.upload, scan_limits(services.settings))
        accepted = record_letter(services, stored.upload, infos, item.created_at)
    except ScanRejected as exc:
        where = f" ({exc.file_name})" if exc.file_name else ""
        return ReplayResult(False, f"{exc.code}: {exc.message('en')}{where}")
    except ScanRejectedDate as exc:
        return ReplayResult(False, f"invalid_date: {exc}")
    _settle_hot_folder(stored.upload, accepted.reference)
    return ReplayResult(
        True,
        "letter recorded, waiting for OCR" if accepted.created else "letter already recorded",
        complaint_id=accepted.complaint_id,
        reference=accepted.reference,
        also_resolves=_other_files(services, item, stored),
    )


def stored_letter(services: Services, item: QuarantineItem) -> StoredLetter:
    """The upload as the mailroom sent it, read back from the blob store."""
    blobs = services.store.blobs
    manifest = item.source_ids.get("letter_manifest")
    if not isinstance(manifest, str):
        return _legacy_letter(services, item)
    document: dict[str, Any] = json.loads(blobs.get(manifest))
    entries: list[dict[str, Any]] = document["files"]
    received_on = document.get("received_on")
    upload = LetterUpload(
        files=[
            LetterFile(entry["name"], blobs.get(entry["sha256"]), entry["declared_type"])
            for entry in entries
        ],
        source=document["source"],
        received_on=date.fromisoformat(received_on) if received_on else None,
        sender_name=document.get("sender_name"),
        sender_address=document.get("sender_address"),
        uploaded_by=document.get("uploaded_by"),
        source_ids={**document.get("source_ids", {}), "replayed_from": item.id},
    )
    return StoredLetter(upload, manifest, [entry["sha256"] for entry in entries])


def _legacy_letter(services: Services, item: QuarantineItem) -> StoredLetter:
    ids = item.source_ids
    name = ids.get("file_name")
    declared = None if item.content_type == UNTYPED else item.content_type
    upload = LetterUpload(
        files=[
            LetterFile(
                name if isinstance(name, str) else None,
                services.store.blobs.get(item.stored_at),
                declared,
            )
        ],
        source=str(ids.get("source") or "quarantine"),
        source_ids={
            **{key: ids[key] for key in _LEGACY_IDS if ids.get(key)},
            "replayed_from": item.id,
        },
    )
    return StoredLetter(upload, None, [item.sha256])


def _settle_hot_folder(upload: LetterUpload, reference: str) -> None:
    """A letter the hot folder refused leaves its ``rejected/`` for ``done/`` once recorded."""
    folder = upload.source_ids.get(HOT_FOLDER_ID)
    if not isinstance(folder, str):
        return
    for item in upload.files:
        try:
            moved = settle_replayed(folder, item.data, reference)
        except OSError as exc:  # the folder is another machine's, or gone: the letter stands
            log.warning(
                "hot folder %s not reachable (%s): %s left in rejected/",
                folder,
                type(exc).__name__,
                item.name,
            )
            continue
        if moved is None:
            log.info("hot folder %s: %s no longer in rejected/", folder, item.name)


def _other_files(services: Services, item: QuarantineItem, stored: StoredLetter) -> tuple[str, ...]:
    """The open items of the same refused letter (same manifest), ``item`` aside."""
    if stored.manifest is None:
        return ()
    found = services.store.quarantine.unresolved_holding(Channel.LETTER.value, stored.file_hashes)
    return tuple(
        other.id
        for other in found
        if other.id != item.id and other.source_ids.get("letter_manifest") == stored.manifest
    )
