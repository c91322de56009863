"""The letters table: one row per postal letter, and the OCR work queue.

A letter is recorded at upload together with its complaint (whose outbox
row waits), with status ``pending``. OCR workers claim rows
(``pending`` -> ``running``), then write the result and release the
complaint (``done``), or the reason it could not be read (``failed``).
Created by migration 0005.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.staff.models import StaffUserRow
from gateway.store.models import Base

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


def _now() -> datetime:
    return datetime.now(UTC)


class LetterRow(Base):
    __tablename__ = "letters"
    __table_args__ = (Index("ix_letters_queue", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    complaint_id: Mapped[str] = mapped_column(ForeignKey("complaints.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    # Where it came from: page, api or hotfolder.
    source: Mapped[str] = mapped_column(String(16))
    # [{name, sha256, size, mime, kind, pages}] in page order.
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_by: Mapped[str | None] = mapped_column(ForeignKey(StaffUserRow.id))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # DocumentResult.to_json() plus review flags.
    result: Mapped[dict[str, Any] | None]
    language: Mapped[str | None] = mapped_column(String(16))
    thumbnail: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=_now)
