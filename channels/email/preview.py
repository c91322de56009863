"""What an e-mail would become, without the store: ``intake normalize FILE.eml``.

raw RFC 822 bytes -> ``channels.email.intake`` (parse, draft) -> normalizer
-> **preview** (evidence and attachments described as the store would) -> JSON.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from channels.email.backlog import choose_received_at, header_times
from channels.email.intake import (
    AUTOREPLY_KIND,
    RAW_CONTENT_TYPE,
    MailArrival,
    build_draft,
    parse_arrival,
)
from config.settings import Settings
from gateway.store.blobs import unstored_attachment, unstored_evidence
from normalizer.assemble import assemble_message
from normalizer.contract import Channel, ComplaintMessage, IntakeEvent
from normalizer.pipeline import normalize, pipeline_context
from normalizer.reference import new_reference


def received_time(raw: bytes) -> tuple[datetime, str]:
    """When a mail read from a file arrived, and which header said so."""
    received, date = header_times(raw) if raw.strip() else (None, None)
    return choose_received_at(
        [("Received header", received), ("Date header", date)], datetime.now(UTC), "current time"
    )


def preview_email(
    settings: Settings, raw: bytes, received_at: datetime
) -> ComplaintMessage | IntakeEvent:
    """What ``ingest_mail`` would record for ``raw``, built without the store.

    Raises ``EmailRejected`` (malformed, over a limit) like ``ingest_mail``.
    """
    parsed = parse_arrival(settings, MailArrival(raw=raw, received_at=received_at))
    evidence = unstored_evidence(raw, RAW_CONTENT_TYPE, message_id=parsed.message_id)
    if parsed.auto_reply:
        return IntakeEvent(
            id=str(uuid.uuid4()),
            kind=AUTOREPLY_KIND,
            channel=Channel.EMAIL,
            received_at=received_at,
            details={"reason": parsed.auto_reply, "subject": parsed.subject},
            evidence=evidence,
        )
    draft = normalize(build_draft(parsed, received_at), pipeline_context(settings))
    return assemble_message(
        draft,
        complaint_id=str(uuid.uuid4()),
        reference=new_reference(),
        evidence=evidence,
        attachments=[unstored_attachment(item) for item in draft.attachments],
        processed_at=datetime.now(UTC),
    )
