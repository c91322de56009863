"""Tables of staff accounts: users (mailroom, operators) and their login sessions.

Created by migration 0005. Passwords are stored only as scrypt hashes;
sessions only as a keyed hash of the cookie's token, so a copy of the
database opens no session.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base


def _now() -> datetime:
    return datetime.now(UTC)


class StaffUserRow(Base):
    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    disabled_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]


class StaffSessionRow(Base):
    __tablename__ = "staff_sessions"

    # HMAC of the cookie's token under the session secret.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
