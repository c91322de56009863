"""Revising a complaint after intake: rewrite it while it waits, amend it once published.

A phone complaint is recorded when the caller hangs up (so the reference can
be read back) but its outbox row waits (``available_at``) for what is still
to come: the recording's bytes, a transcript. An SMS with photos waits for
the photos. Each time something arrives, ``revise`` rebuilds the message
from what the store now holds, in one transaction:

- the row still waits: the stored message and the outbox payload are
  rewritten; once the complaint has everything it will get, the row is
  released (``available_at`` = now);
- the row is due or already published: the relay may have it in hand, so
  the stored message is updated and an *amendment* is queued behind it
  (``ComplaintAmendedEvent``: same complaint id, its own event id).

Why "due" counts as published: the relay reads due rows, publishes, then
marks them; rewriting a row between the read and the mark would lose the
rewrite. A row whose ``available_at`` is still in the future (by a margin
for clock skew between hosts) is not in any batch the relay has read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.store.db import writing
from gateway.store.intake import EVENT_CONTENT_TYPE, guarded
from gateway.store.media import PENDING, STORED, media_views
from gateway.store.tables import CallRow, ComplaintRow, OutboxRow
from normalizer.contract import (
    ComplaintAmendedEvent,
    ComplaintEvent,
    ComplaintMessage,
    Language,
    SecondaryLanguage,
    routing_key_for,
)
from normalizer.language import written_tag
from normalizer.pipeline import clean_text, product_detection_for

RELAY_MARGIN = timedelta(seconds=2)
# The caller pressed nothing: the menu's default language, a guess.
IVR_DEFAULT_METHOD = "ivr-default"

# (session, complaint key, message as stored) -> (message as it should be, is it complete)
Builder = Callable[[Session, str, ComplaintMessage], tuple[ComplaintMessage, bool]]
# A change to make in the same transaction, before the complaint is rebuilt.
Change = Callable[[Session], None]


class Outcome(StrEnum):
    REWRITTEN = "rewritten"  # still waiting; the queued message now says more
    RELEASED = "released"  # complete: the relay publishes it now
    AMENDED = "amended"  # already out: an amendment is queued
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Revision:
    outcome: Outcome
    message: ComplaintMessage


class ComplaintRevisions:
    def __init__(self, engine: Engine, event_source: str) -> None:
        self.engine = engine
        self.event_source = event_source

    def revise(
        self, complaint_key: str, build: Builder, first: Change | None = None
    ) -> Revision | None:
        """Rebuild the complaint recorded under ``complaint_key``; None if there is none yet.

        ``first`` (a downloaded media, a transcript) commits with the revision
        or not at all, so the queued message never lags behind what is stored.
        It is committed even when the complaint does not exist yet.
        """
        return guarded(lambda: self._revise(complaint_key, build, first))

    def _revise(self, complaint_key: str, build: Builder, first: Change | None) -> Revision | None:
        with writing(self.engine) as session:
            if first is not None:
                first(session)
            row = session.scalars(
                select(ComplaintRow)
                .where(ComplaintRow.dedup_key == complaint_key)
                .with_for_update()
            ).first()
            if row is None:
                return None
            current = ComplaintMessage.model_validate_json(row.message)
            wanted, complete = build(session, complaint_key, current)
            original = session.scalars(
                select(OutboxRow)
                .where(OutboxRow.complaint_id == row.id, OutboxRow.event_id == row.id)
                .order_by(OutboxRow.id)
                .limit(1)
            ).first()
            return self._apply(session, row, original, current, wanted=wanted, complete=complete)

    def _apply(
        self,
        session: Session,
        row: ComplaintRow,
        original: OutboxRow | None,
        current: ComplaintMessage,
        *,
        wanted: ComplaintMessage,
        complete: bool,
    ) -> Revision:
        now = datetime.now(UTC)
        waiting = original if _still_waiting(original, now) else None
        changed = changed_fields(current, wanted)
        if not changed:
            if complete and waiting is not None:
                waiting.available_at = now
                return Revision(Outcome.RELEASED, current)
            return Revision(Outcome.UNCHANGED, current)
        message = wanted.model_copy(update={"processed_at": now, **_product_of(wanted)})
        row.message = message.model_dump_json()
        row.language = message.language.tag
        if waiting is not None:
            waiting.payload = (
                ComplaintEvent.wrap(message, self.event_source).model_dump_json().encode()
            )
            waiting.routing_key = routing_key_for(message)
            if complete:
                waiting.available_at = now
            return Revision(Outcome.RELEASED if complete else Outcome.REWRITTEN, message)
        event_id = str(uuid.uuid4())
        amendment = ComplaintAmendedEvent.wrap(
            message, self.event_source, event_id=event_id, changed=changed
        )
        session.add(
            OutboxRow(
                event_id=event_id,
                complaint_id=row.id,
                # Where the complaint went, so the amendment reaches the same consumers.
                routing_key=original.routing_key if original else routing_key_for(message),
                payload=amendment.model_dump_json().encode(),
                content_type=EVENT_CONTENT_TYPE,
                attempts=0,
                held=False,
            )
        )
        return Revision(Outcome.AMENDED, message)


def _still_waiting(row: OutboxRow | None, now: datetime) -> bool:
    if row is None or row.published_at is not None or row.held or row.available_at is None:
        return False
    return row.available_at > now + RELAY_MARGIN


def _product_of(message: ComplaintMessage) -> dict[str, object]:
    """A body that came later (a transcript, a letter's OCR): the product rules read it too."""
    detection = message.product_detection
    if message.product and (detection is None or detection.method == "declared"):
        return {}  # named by the customer or a partner (or stored before the rules)
    product, detection = product_detection_for(None, message.subject, message.body)
    return {"product": product, "product_detection": detection}


def changed_fields(before: ComplaintMessage, after: ComplaintMessage) -> list[str]:
    """Top-level fields that differ, ``processed_at`` aside."""
    old = before.model_dump(mode="json", exclude={"processed_at"})
    new = after.model_dump(mode="json", exclude={"processed_at"})
    return [name for name in new if old.get(name) != new[name]]


# -- what phone and messaging complaints are made of ------------------------
def media_and_transcript(call_sid: str | None) -> Builder:
    """Builder for Twilio complaints: media rows, and the call's transcript for a call."""

    def build(
        session: Session, complaint_key: str, current: ComplaintMessage
    ) -> tuple[ComplaintMessage, bool]:
        media = media_views(session, complaint_key)
        call = None if call_sid is None else session.get(CallRow, call_sid)
        attachments = [item.attachment for item in media if item.state == STORED]
        missing = [item.url for item in media if item.state != STORED]
        update: dict[str, object] = {
            "attachments": [item for item in attachments if item is not None],
            "evidence": current.evidence.model_copy(update={"missing_media": missing}),
        }
        complete = not any(item.state == PENDING for item in media)
        if call is not None:
            if call.transcript is not None:
                update["body"] = clean_text(call.transcript)
            update["language"] = call_language(
                call.language or current.language.tag,
                call.language_method or current.language.method,
                call.transcript_language,
                call.transcript_confidence,
            )
            complete = complete and call.transcript is not None
        return current.model_copy(update=update), complete

    return build


def call_language(
    ivr_tag: str, ivr_method: str, heard_tag: str | None, heard_confidence: float | None
) -> Language:
    """The caller's menu choice decides; the transcript's language is a second opinion.

    A transcript in another language than the one chosen adds that language
    as ``secondary`` (the agent should know). When the caller chose nothing
    (the menu's default was a guess), the transcript's language decides.
    """
    ivr_tag = written_tag(ivr_tag)  # the menu's code (``ary``) as the contract tags it
    heard = heard_tag if heard_tag and heard_tag != "und" else None
    confidence = round(heard_confidence or 0.0, 4)
    if heard and ivr_method == IVR_DEFAULT_METHOD:
        return Language(tag=heard, confidence=confidence, method="transcript")
    secondary = (
        [] if heard in (None, ivr_tag) else [SecondaryLanguage(tag=heard, confidence=confidence)]
    )
    confidence_ivr = 1.0 if ivr_method != IVR_DEFAULT_METHOD else 0.5
    return Language(tag=ivr_tag, confidence=confidence_ivr, method=ivr_method, secondary=secondary)
