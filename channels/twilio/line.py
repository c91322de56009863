"""The phone line's working set: the stores, the texts table, and the small shared steps.

``PhoneLine`` is built once per process (by the routes and by the worker)
around the gateway's ``Services``. ``refresh`` is the one way a Twilio
complaint changes after it was recorded: it rebuilds the message from what
the store holds (media, transcript) and lets ``ComplaintRevisions`` decide
between rewriting it while it waits and amending it once published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from channels.handoff import hand_off
from channels.twilio.signature import FORM_TYPE, TwilioRequest
from channels.twilio.texts import IvrTable, ivr_table
from config.hours import CallCentre
from config.settings import Settings
from gateway.lib.http.errors import ApiError
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store.calls import CallStore
from gateway.store.media import MediaStore
from gateway.store.revisions import (
    Change,
    ComplaintRevisions,
    Revision,
    media_and_transcript,
)
from normalizer.contact import InvalidContact, to_e164
from normalizer.contract import ComplaintMessage
from normalizer.draft import ComplaintDraft, RawInput

log = logging.getLogger("intake.twilio")

CALL_KEY_PREFIX = "twilio:call:"


@dataclass(frozen=True)
class PhoneLine:
    services: Services
    calls: CallStore
    media: MediaStore
    revisions: ComplaintRevisions
    table: IvrTable
    # False while a quarantined webhook is replayed: a refusal then leaves the
    # item where it is instead of quarantining the same input again.
    keeps_refusals: bool = True

    @classmethod
    def of(cls, services: Services) -> PhoneLine:
        store = services.store
        return cls(
            services=services,
            calls=store.calls(),
            media=store.media,
            revisions=store.revisions(services.settings.event_source),
            table=ivr_table(),
        )

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def base_url(self) -> str:
        return self.settings.public_base_url

    @property
    def call_centre(self) -> CallCentre:
        return self.settings.call_centre


def call_sid_of(complaint_key: str) -> str | None:
    """The CallSid behind a call complaint's dedup key (None for messages)."""
    if complaint_key.startswith(CALL_KEY_PREFIX):
        return complaint_key.removeprefix(CALL_KEY_PREFIX)
    return None


def refresh(line: PhoneLine, complaint_key: str, first: Change | None = None) -> Revision | None:
    """Bring a Twilio complaint up to date with its media and transcript.

    ``first``: the change that prompted it, committed in the same transaction.
    """
    revision = line.revisions.revise(
        complaint_key, media_and_transcript(call_sid_of(complaint_key)), first
    )
    if revision is not None and revision.outcome != "unchanged":
        with complaint_context(revision.message.id):
            log.info("complaint %s %s", revision.message.reference, revision.outcome.value)
    return revision


def record_held(
    line: PhoneLine, raw: RawInput, draft: ComplaintDraft, hold_seconds: float | None
) -> tuple[ComplaintMessage, bool]:
    """Normalize and commit a complaint whose publication waits ``hold_seconds`` (None: not).

    A repeat (same dedup key) returns the complaint recorded the first time;
    the store looks it up before writing anything, so no lookup here.
    """
    available_at = (
        None if hold_seconds is None else datetime.now(UTC) + timedelta(seconds=hold_seconds)
    )
    result = hand_off(line.services, raw, draft, available_at)
    return result.message, result.created


def phone_or_none(raw: str) -> str | None:
    """E.164, or None for withheld or malformed numbers ("anonymous", "+266696687")."""
    if not raw:
        return None
    try:
        return to_e164(raw)
    except InvalidContact:
        return None


def keep_refused(
    line: PhoneLine,
    channel: str,
    request: TwilioRequest,
    code: str,
    message: str,
    *,
    ids: dict[str, object],
) -> None:
    """Quarantine a signed webhook we cannot use, with what replaying it needs.

    The path says which handler it was for; ``received_at`` is when Twilio
    posted it, the legal clock's start if a replay makes it a complaint.
    """
    if not line.keeps_refusals:
        return
    line.services.store.complaints.quarantine(
        channel=channel,
        data=request.body,
        content_type=FORM_TYPE,
        reason_code=code,
        reason=message,
        source_ids={
            "path": request.path,
            "received_at": request.received_at.isoformat(),
            **ids,
        },
    )


def reject(
    line: PhoneLine,
    channel: str,
    request: TwilioRequest,
    code: str,
    message: str,
    *,
    ids: dict[str, object],
) -> ApiError:
    """Quarantine a webhook we cannot use; the returned error is the answer (400)."""
    keep_refused(line, channel, request, code, message, ids=ids)
    return ApiError(400, code, message)
