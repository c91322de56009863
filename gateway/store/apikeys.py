"""API keys for partner systems calling ``/v1/``.

A key is shown once, when created; only its sha256 is stored. Keys carry a
short readable prefix (``cpk_ab12…``) so an operator can tell them apart in
lists without ever seeing the secret.

A key reads back only the complaints it submitted itself, unless it was
created to read all of them (``reads_all``: the call centre's CRM looking up
the reference a caller reads out). Rotating a key gives its partner a new
secret under the same identity, so an ``Idempotency-Key`` sent before the
rotation still finds its complaint after it.

A key that authenticated is remembered for ``CACHE_SECONDS``, so a busy
partner does not cost a database read per request; a key revoked in another
process stops working within that time (at once in the revoking process: the
memory is cleared after the change commits, and a lookup that was under way
meanwhile is not remembered).
Refusals are never remembered: a new key works at once, and guessing fills
no memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.db import reading, writing
from gateway.store.tables import ApiKeyRow
from normalizer.errors import InputRejected

KEY_PREFIX = "cpk_"
CACHE_SECONDS = 5.0
# Far more than there are partners; past it the memory starts over.
_CACHE_LIMIT = 1000


class ApiKeyExists(InputRejected, ValueError):
    pass


@dataclass(frozen=True)
class ApiClient:
    id: str
    name: str
    prefix: str
    reads_all: bool = False

    def may_read(self, submitted_by: str | None) -> bool:
        """Whether this key may read a complaint submitted by ``submitted_by`` (a key name)."""
        return self.reads_all or submitted_by == self.name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]


class ApiKeys:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self._clock = clock
        self._known: dict[str, tuple[ApiClient, float]] = {}
        # Counts the changes made here; a lookup is remembered only if none
        # committed while it ran, since it may have read the row as it was.
        self._generation = 0
        self._lock = threading.Lock()

    def create(self, name: str, *, reads_all: bool = False) -> str:
        """A new key for ``name``; the only time the clear key exists."""
        key = _new_key()
        try:
            with writing(self.engine) as session:
                session.add(
                    ApiKeyRow(
                        id=str(uuid.uuid4()),
                        name=name,
                        key_hash=hash_key(key),
                        prefix=_prefix(key),
                        reads_all=reads_all,
                    )
                )
        except IntegrityError:
            raise ApiKeyExists(f"an API key named {name!r} already exists") from None
        return key

    def rotate(self, name: str) -> str | None:
        """A new secret for the active key ``name`` (the old one stops working); None if none."""
        key = _new_key()
        changed = self._update_active(name, key_hash=hash_key(key), prefix=_prefix(key))
        return key if changed else None

    def authenticate(self, key: str) -> ApiClient | None:
        digest = hash_key(key)
        now = self._clock()
        with self._lock:
            known = self._known.get(digest)
            generation = self._generation
        if known is not None and known[1] > now:
            return known[0]
        client = self._lookup(digest)
        self._remember(digest, client, generation, now + CACHE_SECONDS)
        return client

    def _remember(
        self, digest: str, client: ApiClient | None, generation: int, until: float
    ) -> None:
        """Keep an accepted key until ``until``, unless a key changed here since it was read."""
        with self._lock:
            if client is None or generation != self._generation:
                self._known.pop(digest, None)
                return
            if len(self._known) >= _CACHE_LIMIT:
                self._known.clear()
            self._known[digest] = (client, until)

    def _lookup(self, digest: str) -> ApiClient | None:
        with reading(self.engine) as session:
            row = session.scalars(
                select(ApiKeyRow).where(
                    ApiKeyRow.key_hash == digest, ApiKeyRow.revoked_at.is_(None)
                )
            ).first()
        # The lookup is by hash, so timing says nothing about the key; the
        # comparison below is belt and braces.
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        return ApiClient(id=row.id, name=row.name, prefix=row.prefix, reads_all=row.reads_all)

    def by_name(self, name: str) -> ApiClient | None:
        """The client called ``name``, revoked or not (a replay keeps its submitter)."""
        with reading(self.engine) as session:
            row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.name == name)).first()
        return None if row is None else ApiClient(id=row.id, name=row.name, prefix=row.prefix)

    def revoke(self, name: str) -> bool:
        return self._update_active(name, revoked_at=datetime.now(UTC))

    def _update_active(self, name: str, **values: object) -> bool:
        """Change the active key ``name``, then forget every remembered key (at once here).

        Forgotten after the commit, not before: a request in between would
        read the old row and remember it for ``CACHE_SECONDS``.
        """
        with writing(self.engine) as session:
            result = session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
                .values(**values)
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
        with self._lock:
            self._generation += 1
            self._known.clear()
        return changed

    def list(self) -> list[tuple[str, str, datetime, datetime | None, bool]]:
        with reading(self.engine) as session:
            return [
                (row.name, row.prefix, row.created_at, row.revoked_at, row.reads_all)
                for row in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            ]

    def count_active(self) -> int:
        with reading(self.engine) as session:
            return len(
                session.scalars(select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None))).all()
            )
