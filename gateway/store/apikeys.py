"""API keys for partner systems calling ``/v1/``.

A key is shown once, when created; only its sha256 is stored. Keys carry a
short readable prefix (``cpk_ab12…``) so an operator can tell them apart in
lists without ever seeing the secret.

What a key may do is the list of its scopes (``SCOPES``): a partner's CRM
submits complaints and reads back its own (``complaints:write``,
``complaints:status``, what a key gets when none is named), a scanning
station letters, a speech-to-text engine transcripts; the call centre's CRM
reads any complaint (``complaints:read-all``: looking up the reference a
caller reads out). Setting who a complaint came from, or backdating it, is
granted separately. Rotating a key gives its partner a new
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
from collections.abc import Callable, Iterable
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


# Scope -> what it allows (``intake api-key list`` and the docs say the same).
SCOPES: dict[str, str] = {
    "complaints:write": "submit complaints (POST /v1/complaints)",
    "complaints:status": "read back the complaints and letters this key submitted",
    "complaints:read-all": (
        "read any complaint and letter, and the acknowledgement letters to post (/v1/acks)"
    ),
    "letters:write": "upload scanned letters (POST /v1/letters)",
    "status:write": "report what became of any complaint (POST /v1/complaints/{reference}/status)",
    "transcripts:write": "attach a call's transcript (POST /v1/calls/{CallSid}/transcript)",
    "origin:set": "submit a complaint with an origin other than customer, or a channel other "
    "than api or phone",
    "received-at:backdate": "submit a complaint received in the past (up to "
    "INTAKE_MAX_BACKDATE_DAYS)",
}
READ_ALL = "complaints:read-all"
STATUS = "complaints:status"
# Case management reporting a complaint's status (``complaints:status`` already names reading).
STATUS_WRITE = "status:write"
# A key created without naming any scope: a partner's CRM or script.
DEFAULT_SCOPES = frozenset({"complaints:write", STATUS})


class ApiKeyExists(InputRejected, ValueError):
    pass


class UnknownScope(InputRejected, ValueError):
    def __init__(self, scope: str) -> None:
        super().__init__(f"unknown scope {scope!r}; the scopes are: {', '.join(SCOPES)}")


def checked_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """``scopes`` as a set, or ``UnknownScope`` naming the first that does not exist."""
    found = frozenset(scopes)
    for scope in sorted(found):
        if scope not in SCOPES:
            raise UnknownScope(scope)
    return found


def _stored(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))


def _read(stored: str) -> frozenset[str]:
    return frozenset(stored.split())


@dataclass(frozen=True)
class ApiClient:
    id: str
    name: str
    prefix: str
    scopes: frozenset[str] = frozenset()

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def reads_all(self) -> bool:
        """Whether this key reads any complaint (``complaints:read-all``)."""
        return READ_ALL in self.scopes

    def may_read(self, submitted_by: str | None) -> bool:
        """Whether this key may read a complaint submitted by ``submitted_by`` (a key name)."""
        return self.reads_all or (STATUS in self.scopes and submitted_by == self.name)


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

    def create(self, name: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> str:
        """A new key for ``name`` with ``scopes``; the only time the clear key exists."""
        allowed = checked_scopes(scopes)
        key = _new_key()
        try:
            with writing(self.engine) as session:
                session.add(
                    ApiKeyRow(
                        id=str(uuid.uuid4()),
                        name=name,
                        key_hash=hash_key(key),
                        prefix=_prefix(key),
                        scopes=_stored(allowed),
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

    def recently_accepted(self, key: str) -> ApiClient | None:
        """The client of ``key`` if this process accepted it within ``CACHE_SECONDS``.

        Never blocks (no database): an HTTP handler asks here first, on its
        event loop, and goes to a thread for ``authenticate`` only on a miss.
        """
        digest = hash_key(key)
        with self._lock:
            known = self._known.get(digest)
        return known[0] if known is not None and known[1] > self._clock() else None

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
        return _client(row)

    def by_name(self, name: str) -> ApiClient | None:
        """The client called ``name``, revoked or not (a replay keeps its submitter)."""
        with reading(self.engine) as session:
            row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.name == name)).first()
        return None if row is None else _client(row)

    def change_scopes(
        self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> frozenset[str] | None:
        """Grant ``add`` and withdraw ``remove`` on the active key ``name``; its scopes, or None.

        Takes effect like a revocation: at once here, within ``CACHE_SECONDS`` elsewhere.
        """
        granted, withdrawn = checked_scopes(add), checked_scopes(remove)
        with reading(self.engine) as session:
            stored = session.scalar(
                select(ApiKeyRow.scopes).where(
                    ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None)
                )
            )
        if stored is None:
            return None
        scopes = (_read(stored) | granted) - withdrawn
        # Only if nobody changed them meanwhile: two operators' changes never mix.
        with writing(self.engine) as session:
            result = session.execute(
                update(ApiKeyRow)
                .where(
                    ApiKeyRow.name == name,
                    ApiKeyRow.revoked_at.is_(None),
                    ApiKeyRow.scopes == stored,
                )
                .values(scopes=_stored(scopes))
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
        self._forget_all()
        return scopes if changed else self.change_scopes(name, add=add, remove=remove)

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
        self._forget_all()
        return changed

    def _forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._known.clear()

    def list(self) -> list[tuple[str, str, datetime, datetime | None, frozenset[str]]]:
        with reading(self.engine) as session:
            return [
                (row.name, row.prefix, row.created_at, row.revoked_at, _read(row.scopes))
                for row in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            ]

    def count_active(self) -> int:
        with reading(self.engine) as session:
            return len(
                session.scalars(select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None))).all()
            )


def _client(row: ApiKeyRow) -> ApiClient:
    return ApiClient(id=row.id, name=row.name, prefix=row.prefix, scopes=_read(row.scopes))
