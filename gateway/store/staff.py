"""Staff accounts and sessions in the store: add, list, disable, log in, log out.

A session is a random token in an HttpOnly cookie; the table keeps only its
HMAC under the session secret, the user, a CSRF token and an expiry.
Disabling a user ends their sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.db import reading, writing
from gateway.store.passwords import DUMMY_HASH, hash_password, verify_password
from gateway.store.tables import StaffSessionRow, StaffUserRow
from normalizer.errors import InputRejected


class UserExists(InputRejected):
    pass


@dataclass(frozen=True)
class StaffUser:
    id: str
    name: str
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class StaffSession:
    user: StaffUser
    csrf_token: str
    expires_at: datetime


def _user(row: StaffUserRow) -> StaffUser:
    return StaffUser(row.id, row.name, row.created_at, row.disabled_at)


class StaffAccounts:
    def __init__(self, engine: Engine, secret: bytes, max_age: int) -> None:
        self.engine = engine
        self.secret = secret
        self.max_age = max_age

    # -- accounts -----------------------------------------------------------
    def add(self, name: str, password: str) -> StaffUser:
        user_id, now = str(uuid.uuid4()), datetime.now(UTC)
        row = StaffUserRow(
            id=user_id, name=name, password_hash=hash_password(password), created_at=now
        )
        try:
            with writing(self.engine) as session:
                session.add(row)
        except IntegrityError:
            raise UserExists(f"a user named {name!r} already exists") from None
        return StaffUser(user_id, name, now, None)

    def list(self) -> list[StaffUser]:
        with reading(self.engine) as session:
            rows = session.scalars(select(StaffUserRow).order_by(StaffUserRow.name))
            return [_user(row) for row in rows]

    def disable(self, name: str) -> bool:
        with writing(self.engine) as session:
            user_id = session.scalar(
                select(StaffUserRow.id).where(
                    StaffUserRow.name == name, StaffUserRow.disabled_at.is_(None)
                )
            )
            if user_id is None:
                return False
            session.execute(
                update(StaffUserRow)
                .where(StaffUserRow.id == user_id)
                .values(disabled_at=datetime.now(UTC))
            )
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == user_id))
        return True

    def authenticate(self, name: str, password: str) -> StaffUser | None:
        with reading(self.engine) as session:
            row = session.scalars(select(StaffUserRow).where(StaffUserRow.name == name)).first()
        stored = row.password_hash if row is not None else DUMMY_HASH
        valid = verify_password(password, stored)
        if row is None or not valid or row.disabled_at is not None:
            return None
        return _user(row)

    # -- sessions -----------------------------------------------------------
    def _key(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()

    def open_session(self, user: StaffUser) -> tuple[str, StaffSession]:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.max_age)
        csrf = secrets.token_urlsafe(32)
        with writing(self.engine) as session:
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.expires_at < now))
            session.add(
                StaffSessionRow(
                    id=self._key(token), user_id=user.id, csrf_token=csrf, expires_at=expires
                )
            )
            session.execute(
                update(StaffUserRow).where(StaffUserRow.id == user.id).values(last_login_at=now)
            )
        return token, StaffSession(user, csrf, expires)

    def session_for(self, token: str) -> StaffSession | None:
        now = datetime.now(UTC)
        with reading(self.engine) as session:
            found = session.execute(
                select(StaffSessionRow, StaffUserRow)
                .join(StaffUserRow, StaffSessionRow.user_id == StaffUserRow.id)
                .where(StaffSessionRow.id == self._key(token))
            ).first()
        if found is None:
            return None
        row, user = found
        if row.expires_at <= now or user.disabled_at is not None:
            return None
        return StaffSession(_user(user), row.csrf_token, row.expires_at)

    def close_session(self, token: str) -> None:
        with writing(self.engine) as session:
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.id == self._key(token)))
