"""Tables of the customer-facing side: web form rate limits and acknowledgements.

web form POST -> **webform_attempts** (one row per attempt, per hashed client
address) -> the limit is a count over the last hour, so every web instance
behind the load balancer agrees.

complaints.acks queue -> ack worker -> **acknowledgements** (one row per
complaint, unique): what was sent, to whom, when, or why nothing was. The
unique complaint id is what makes a redelivered complaint harmless.

The tables are declared on the store's ``Base`` so the Alembic migrations
see them (``gateway/store/migrations/env.py`` imports this module); the
schema itself is created by migrations 0007 and 0009.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base


def _now() -> datetime:
    return datetime.now(UTC)


class WebformAttemptRow(Base):
    """One POST of the public form, for the per-address hourly limit."""

    __tablename__ = "webform_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Keyed hash of the client address: enough to count, useless to identify.
    client_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)


class AcknowledgementRow(Base):
    """The acknowledgement of one complaint: sent, queued (letters), failed or skipped."""

    __tablename__ = "acknowledgements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(16), index=True)
    # email, sms, whatsapp, letter; null when skipped before a method was chosen.
    method: Mapped[str | None] = mapped_column(String(16))
    # Normalized address (lower-case e-mail, E.164 phone) for the daily cap.
    recipient: Mapped[str | None] = mapped_column(String(320), index=True)
    languages: Mapped[str] = mapped_column(String(32), default="")
    # sending -> sent | failed; letters: queued -> sent (posted); or skipped.
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    # E-mail Message-ID, drawn once: a resend after a crash carries the same one.
    message_id: Mapped[str | None] = mapped_column(String(255))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    # The PDF of a letter acknowledgement, in the blob store.
    document: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    event_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=_now)
    sent_at: Mapped[datetime | None]
    # When the row took one of its recipient's places for the day (the daily
    # cap counts them); taken again when ``intake ack retry`` re-opens it
    # (migration 0009).
    claimed_at: Mapped[datetime | None]
    # A deferred row (it kept failing on our side; ``reason`` holds the last
    # failure's code) or one re-opened by ``intake ack retry`` is sent by a
    # worker's poll, not by a queue delivery: not before this time. A worker
    # taking it moves it on past its send, so it is also a lease: a worker
    # that died mid-send leaves it to another once it lapses.
    retry_at: Mapped[datetime | None]
    # Times ``intake ack retry`` re-opened it (each round publishes its own ``ack.failed``).
    reopened: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
