"""Staff accounts and sessions in the store: add, list, roles, passwords, log in, log out.

A session is a random token in an HttpOnly cookie; the table keeps only its
HMAC under the session secret, the user, a CSRF token, an expiry (the
absolute age) and when it was last used (the idle timeout). Disabling a
user, or setting their password from the shell, ends their sessions.

Roles (``ROLES``): ``mailroom`` (the letters pages), ``operator`` (``/ops/``)
and ``admin`` (everything). What each role may open is
``gateway.lib.http.auth``'s table.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.db import reading, writing
from gateway.store.passwords import DUMMY_HASH, hash_password, verify_password
from gateway.store.tables import StaffSessionRow, StaffUserRow
from normalizer.errors import InputRejected

MAILROOM, OPERATOR, ADMIN = "mailroom", "operator", "admin"
ROLES = (MAILROOM, OPERATOR, ADMIN)
# ``last_seen_at`` is written at most this often (not at every request).
_SEEN_EVERY = timedelta(seconds=60)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UserExists(InputRejected):
    pass


class UnknownRole(InputRejected, ValueError):
    pass


class NoSuchUser(InputRejected, LookupError):
    pass


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UnknownRole(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class StaffUser:
    id: str
    name: str
    created_at: datetime
    disabled_at: datetime | None
    role: str = MAILROOM


@dataclass(frozen=True)
class StaffSession:
    user: StaffUser
    csrf_token: str
    expires_at: datetime


def _user(row: StaffUserRow) -> StaffUser:
    return StaffUser(row.id, row.name, row.created_at, row.disabled_at, row.role)


class StaffAccounts:
    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        max_age: int,
        idle_timeout: int | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self.engine = engine
        self.secret = secret
        self.max_age = max_age
        # Seconds without a request after which a session ends; None: only max_age.
        self.idle_timeout = idle_timeout
        self.clock = clock

    # -- accounts -----------------------------------------------------------
    def add(self, name: str, password: str, role: str = MAILROOM) -> StaffUser:
        check_role(role)
        user_id, now = str(uuid.uuid4()), self.clock()
        row = StaffUserRow(
            id=user_id,
            name=name,
            password_hash=hash_password(password),
            created_at=now,
            role=role,
            password_changed_at=now,
        )
        try:
            with writing(self.engine) as session:
                session.add(row)
        except IntegrityError:
            raise UserExists(f"a user named {name!r} already exists") from None
        return StaffUser(user_id, name, now, None, role)

    def list(self) -> list[StaffUser]:
        with reading(self.engine) as session:
            rows = session.scalars(select(StaffUserRow).order_by(StaffUserRow.name))
            return [_user(row) for row in rows]

    def get(self, name: str) -> StaffUser | None:
        with reading(self.engine) as session:
            row = session.scalars(select(StaffUserRow).where(StaffUserRow.name == name)).first()
            return None if row is None else _user(row)

    def set_role(self, name: str, role: str) -> str:
        """Give ``name`` the role ``role``; the role they had. Their sessions end."""
        check_role(role)
        with writing(self.engine) as session:
            row = session.scalars(select(StaffUserRow).where(StaffUserRow.name == name)).first()
            if row is None:
                raise NoSuchUser(f"no user named {name!r}")
            before = row.role
            row.role = role
            if before != role:
                session.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == row.id))
        return before

    def set_password(self, name: str, password: str) -> None:
        """A new password for ``name`` (an admin's reset); every session of theirs ends."""
        digest = hash_password(password)
        with writing(self.engine) as session:
            user_id = session.scalar(select(StaffUserRow.id).where(StaffUserRow.name == name))
            if user_id is None:
                raise NoSuchUser(f"no user named {name!r}")
            session.execute(
                update(StaffUserRow)
                .where(StaffUserRow.id == user_id)
                .values(password_hash=digest, password_changed_at=self.clock())
            )
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == user_id))

    def change_password(self, user: StaffUser, current: str, new: str, keep_token: str) -> bool:
        """The user's own change: ``current`` must be right. Other sessions end, this one stays.

        False if ``current`` is wrong; ``WeakPassword`` if ``new`` is too short.
        """
        with reading(self.engine) as session:
            stored = session.scalar(
                select(StaffUserRow.password_hash).where(StaffUserRow.id == user.id)
            )
        if not verify_password(current, stored or DUMMY_HASH) or stored is None:
            return False
        digest = hash_password(new)
        with writing(self.engine) as session:
            session.execute(
                update(StaffUserRow)
                .where(StaffUserRow.id == user.id)
                .values(password_hash=digest, password_changed_at=self.clock())
            )
            session.execute(
                delete(StaffSessionRow).where(
                    StaffSessionRow.user_id == user.id, StaffSessionRow.id != self._key(keep_token)
                )
            )
        return True

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
                .values(disabled_at=self.clock())
            )
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.user_id == user_id))
        return True

    def exists(self, name: str) -> bool:
        with reading(self.engine) as session:
            return (
                session.scalar(select(StaffUserRow.id).where(StaffUserRow.name == name)) is not None
            )

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
        now = self.clock()
        expires = now + timedelta(seconds=self.max_age)
        csrf = secrets.token_urlsafe(32)
        with writing(self.engine) as session:
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.expires_at < now))
            session.add(
                StaffSessionRow(
                    id=self._key(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=expires,
                    last_seen_at=now,
                )
            )
            session.execute(
                update(StaffUserRow).where(StaffUserRow.id == user.id).values(last_login_at=now)
            )
        return token, StaffSession(user, csrf, expires)

    def session_for(self, token: str) -> StaffSession | None:
        """The live session of ``token``; None when unknown, expired, idle too long or disabled."""
        now = self.clock()
        key = self._key(token)
        with reading(self.engine) as session:
            found = session.execute(
                select(StaffSessionRow, StaffUserRow)
                .join(StaffUserRow, StaffSessionRow.user_id == StaffUserRow.id)
                .where(StaffSessionRow.id == key)
            ).first()
        if found is None:
            return None
        row, user = found
        if row.expires_at <= now or user.disabled_at is not None:
            return None
        seen = row.last_seen_at or row.created_at
        if self.idle_timeout is not None and now - seen > timedelta(seconds=self.idle_timeout):
            with writing(self.engine) as session:
                session.execute(delete(StaffSessionRow).where(StaffSessionRow.id == key))
            return None
        if now - seen >= _SEEN_EVERY:
            with writing(self.engine) as session:
                session.execute(
                    update(StaffSessionRow)
                    .where(StaffSessionRow.id == key)
                    .values(last_seen_at=now)
                )
        return StaffSession(_user(user), row.csrf_token, row.expires_at)

    def close_session(self, token: str) -> None:
        with writing(self.engine) as session:
            session.execute(delete(StaffSessionRow).where(StaffSessionRow.id == self._key(token)))
