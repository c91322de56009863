"""Phone-line state: calls on the 0520020915 line and the transcripts they get.

Twilio tells us about one call in several webhooks (incoming, language
choice, end of recording, recording status, transcription, call status), in
an order that is not guaranteed and each possibly repeated. ``twilio_calls``
keeps what we know of each call, keyed by ``CallSid``; every change is an
idempotent upsert or a guarded transition, so a retried webhook changes
nothing. The complaint itself lives in ``complaints`` under the dedup key
``twilio:call:<CallSid>``; media waiting to be fetched (recordings, MMS
photos) live in ``twilio_media`` (``gateway.store.media``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.store.db import reading, writing
from gateway.store.intake import guarded
from gateway.store.tables import Base, CallRow, _now


class CallState(StrEnum):
    MENU = "menu"  # the greeting and the language menu were sent
    RECORDING = "recording"  # a language was chosen, <Record> was sent
    CONNECTING = "connecting"  # in opening hours: put through, waiting for an agent
    ANSWERED = "answered"  # an agent took the call (a complaint comes typed, if any)
    RECORDED = "recorded"  # Twilio posted the recording: there is a complaint
    COMPLETED = "completed"  # the call ended after its recording
    MISSED = "missed"  # ended before anything was recorded: a missed-call event


# States in which a call has no complaint (yet) and ends as a missed call.
WITHOUT_RECORDING = (CallState.MENU, CallState.RECORDING, CallState.CONNECTING)


def call_complaint_key(call_sid: str) -> str:
    return f"twilio:call:{call_sid}"


@dataclass(frozen=True)
class Call:
    call_sid: str
    state: CallState
    caller: str | None
    called: str | None
    language: str | None
    language_method: str | None
    started_at: datetime
    ended_at: datetime | None
    final_status: str | None
    recording_sid: str | None
    recording_url: str | None
    transcript: str | None
    transcript_sha256: str | None
    transcript_language: str | None
    transcript_confidence: float | None
    end_request: str | None

    @property
    def complaint_key(self) -> str:
        return call_complaint_key(self.call_sid)


@dataclass(frozen=True)
class Transcript:
    text: str
    sha256: str
    language: str
    confidence: float
    source: str
    evidence: str


@dataclass
class KeepTranscript:
    """The change "this is the call's transcript now", for ``revise(first=...)``.

    The newest transcript wins; ``changed`` says what happened: True (kept),
    False (the same text was already kept), None (no such call).
    """

    call_sid: str
    transcript: Transcript
    changed: bool | None = None

    def __call__(self, session: Session) -> None:
        row = session.scalars(
            select(CallRow).where(CallRow.call_sid == self.call_sid).with_for_update()
        ).one_or_none()
        if row is None or row.transcript_sha256 == self.transcript.sha256:
            self.changed = None if row is None else False
            return
        row.transcript = self.transcript.text
        row.transcript_sha256 = self.transcript.sha256
        row.transcript_language = self.transcript.language
        row.transcript_confidence = self.transcript.confidence
        row.transcript_source = self.transcript.source[:100]
        row.transcript_evidence = self.transcript.evidence
        row.updated_at = _now()
        self.changed = True


def _call(row: CallRow) -> Call:
    return Call(
        call_sid=row.call_sid,
        state=CallState(row.state),
        caller=row.caller,
        called=row.called,
        language=row.language,
        language_method=row.language_method,
        started_at=row.started_at,
        ended_at=row.ended_at,
        final_status=row.final_status,
        recording_sid=row.recording_sid,
        recording_url=row.recording_url,
        transcript=row.transcript,
        transcript_sha256=row.transcript_sha256,
        transcript_language=row.transcript_language,
        transcript_confidence=row.transcript_confidence,
        end_request=row.end_request,
    )


def insert_ignoring_duplicates(session: Session, model: type[Base], values: dict[str, Any]) -> None:
    """INSERT that does nothing when a unique key already holds a row (a retried webhook)."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    session.execute(module.insert(model).values(**values).on_conflict_do_nothing())


class CallStore:
    def __init__(self, engine: Engine, *, first_seen_at: datetime | None = None) -> None:
        self.engine = engine
        # When a call this store sees for the first time started; None: now. A
        # replayed webhook passes the time Twilio first posted it (the legal clock).
        self.first_seen_at = first_seen_at

    def get(self, call_sid: str) -> Call | None:
        def action() -> Call | None:
            with reading(self.engine) as session:
                row = session.get(CallRow, call_sid)
                return None if row is None else _call(row)

        return guarded(action)

    def start(
        self, call_sid: str, *, account_sid: str | None, caller: str | None, called: str | None
    ) -> Call:
        """The call as first seen (a repeated incoming-call webhook changes nothing)."""

        def action() -> Call:
            with writing(self.engine) as session:
                self._ensure(session, call_sid, account_sid, caller, called)
                row = self._row(session, call_sid)
                # A callback that came first made the row without the numbers.
                row.caller = row.caller or caller
                row.called = row.called or called
                row.account_sid = row.account_sid or account_sid
                return _call(row)

        return guarded(action)

    def choose_language(self, call_sid: str, tag: str, method: str) -> Call:
        """Record the caller's choice; a call already past the menu keeps its state."""

        def action() -> Call:
            with writing(self.engine) as session:
                self._ensure(session, call_sid, None, None, None)
                row = self._row(session, call_sid)
                row.language, row.language_method = tag, method
                if row.state == CallState.MENU:
                    row.state = CallState.RECORDING
                row.updated_at = _now()
                return _call(row)

        return guarded(action)

    def note_recording(
        self,
        call_sid: str,
        *,
        recording_sid: str,
        recording_url: str,
        caller: str | None,
        called: str | None,
        account_sid: str | None,
    ) -> Call:
        """The recording exists: the call has (or is about to have) a complaint."""

        def action() -> Call:
            with writing(self.engine) as session:
                self._ensure(session, call_sid, account_sid, caller, called)
                row = self._row(session, call_sid)
                row.recording_sid = row.recording_sid or recording_sid
                row.recording_url = row.recording_url or recording_url
                if row.state in WITHOUT_RECORDING or row.state == CallState.MISSED:
                    ended = row.ended_at is not None
                    row.state = CallState.COMPLETED if ended else CallState.RECORDED
                row.updated_at = _now()
                return _call(row)

        return guarded(action)

    def end(self, call_sid: str, status: str, request_body: str) -> Call:
        """Twilio says the call is over; the first report of the end is kept."""

        def action() -> Call:
            with writing(self.engine) as session:
                self._ensure(session, call_sid, None, None, None)
                row = self._row(session, call_sid)
                if row.ended_at is None:
                    row.ended_at, row.final_status, row.end_request = _now(), status, request_body
                    if row.state == CallState.RECORDED:
                        row.state = CallState.COMPLETED
                    row.updated_at = _now()
                return _call(row)

        return guarded(action)

    def move(self, call_sid: str, from_states: tuple[CallState, ...], to: CallState) -> Call:
        """A guarded transition (put through, answered, back to the message): a retry is a no-op."""

        def action() -> Call:
            with writing(self.engine) as session:
                self._ensure(session, call_sid, None, None, None)
                row = self._row(session, call_sid)
                if row.state in from_states:
                    row.state, row.updated_at = to.value, _now()
                return _call(row)

        return guarded(action)

    def link_typed(self, call_sid: str) -> Call | None:
        """An agent typed the call's complaint: the call has one now (None: no such call)."""

        def action() -> Call | None:
            with writing(self.engine) as session:
                row = session.scalars(
                    select(CallRow).where(CallRow.call_sid == call_sid).with_for_update()
                ).one_or_none()
                if row is None:
                    return None
                if row.state not in (CallState.RECORDED, CallState.COMPLETED):
                    ended = row.ended_at is not None
                    row.state = CallState.COMPLETED if ended else CallState.RECORDED
                    row.updated_at = _now()
                return _call(row)

        return guarded(action)

    def mark_missed(self, call_sid: str) -> bool:
        """Menu/recording -> missed, once; False if a recording (or another worker) won."""

        def action() -> bool:
            with writing(self.engine) as session:
                changed = session.execute(
                    update(CallRow)
                    .where(CallRow.call_sid == call_sid, CallRow.state.in_(WITHOUT_RECORDING))
                    .values(state=CallState.MISSED, updated_at=_now())
                )
                return bool(changed.rowcount)  # type: ignore[attr-defined]

        return guarded(action)

    def ended_without_recording(self, ended_before: datetime, limit: int = 100) -> list[Call]:
        """Calls over since before ``ended_before`` that never got a recording."""

        def action() -> list[Call]:
            with reading(self.engine) as session:
                rows = session.scalars(
                    select(CallRow)
                    .where(
                        CallRow.state.in_(WITHOUT_RECORDING),
                        CallRow.ended_at.is_not(None),
                        CallRow.ended_at <= ended_before,
                    )
                    .order_by(CallRow.ended_at)
                    .limit(limit)
                )
                return [_call(row) for row in rows]

        return guarded(action)

    # -- helpers -----------------------------------------------------------
    def _ensure(
        self,
        session: Session,
        call_sid: str,
        account_sid: str | None,
        caller: str | None,
        called: str | None,
    ) -> None:
        now = _now()
        insert_ignoring_duplicates(
            session,
            CallRow,
            {
                "call_sid": call_sid,
                "account_sid": account_sid,
                "caller": caller,
                "called": called,
                "state": CallState.MENU.value,
                "started_at": self.first_seen_at or now,
                "updated_at": now,
            },
        )

    @staticmethod
    def _row(session: Session, call_sid: str) -> CallRow:
        """The call's row, locked for the transaction (PostgreSQL; SQLite locks it all)."""
        return session.scalars(
            select(CallRow).where(CallRow.call_sid == call_sid).with_for_update()
        ).one()
