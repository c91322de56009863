"""One customer across channels: the keys of complaints' contact points, and what they link.

channel -> ``record_complaint`` -> ``complaint_rows.write_batch`` ->
**resolve** (which customer key each new complaint takes, and the references
of that customer's complaints of the last 12 months) -> the complaint rows
-> **record** (the contact points' rows, in the same transaction).

A contact point (the phone in E.164, else the e-mail in lower case) is kept
only as its key, an HMAC under ``INTAKE_CUSTOMER_KEY_SECRET``
(``normalizer.customer``). The first complaint by a point gives it a customer
key (the key of that complaint's first point); every later complaint with a
known point takes the customer key of its first known point, the phone's
before the e-mail's. So a customer who called, then wrote from an address
they gave on the phone, keeps one key. Two points first seen apart and later
given together keep their two keys (the phone's wins for the new complaint);
``related`` links them all the same.

The ``Customers`` repository reads what the API route and the operator page
show, and backfills complaints stored before migration 0020.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, Select, and_, func, insert, or_, select

from gateway.store.db import committing, read_connection
from gateway.store.tables import ComplaintContactRow, ComplaintRow, CustomerPointRow
from normalizer.contract import ComplaintMessage
from normalizer.customer import contact_keys

log = logging.getLogger("intake.store.customers")

# ``related``: complaints of the last 12 months, at most this many (the newest).
RELATED_WINDOW = timedelta(days=365)
MAX_RELATED = 100
# Where the secret is kept when ``INTAKE_CUSTOMER_KEY_SECRET`` is empty.
SECRET_FILE = "customer-key.secret"  # noqa: S105 (a file name, not a secret)
_INSERT_POINTS = insert(CustomerPointRow.__table__)  # type: ignore[arg-type]
_INSERT_CONTACTS = insert(ComplaintContactRow.__table__)  # type: ignore[arg-type]


def resolve_secret(configured: str, data_dir: Path, *, create: bool = True) -> bytes:
    """The secret of customer keys: the setting, else one made once in the data folder.

    The file is shared by every process that shares the data folder (the
    evidence blobs live there too); a deployment whose machines do not share
    it must set ``INTAKE_CUSTOMER_KEY_SECRET``, or each would key customers
    its own way. Without ``create`` (a read-only store), no file is no secret: empty.
    """
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    if not path.exists():
        if not create:
            return b""
        _create_secret(path)
    value = path.read_text("ascii").strip()
    if not value:
        raise OSError(f"{path} is empty: remove it or set INTAKE_CUSTOMER_KEY_SECRET")
    return value.encode("ascii")


def _create_secret(path: Path) -> None:
    """Write a new secret where no process wrote one yet (the first one to link wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, (secrets.token_urlsafe(32) + "\n").encode("ascii"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(staging, path)
    except FileExistsError:
        pass  # another process made it first: theirs is the secret
    finally:
        staging.unlink()
    # Not a warning on every first command: the embedded defaults run this way on
    # purpose; a deployment on several machines sets the secret (README, customer keys).
    log.debug(
        "INTAKE_CUSTOMER_KEY_SECRET is not set: customer keys use a secret made in %s",
        path.parent,
    )


@dataclass(frozen=True)
class Linkable:
    """What linking needs of one new complaint."""

    complaint_id: str
    reference: str
    received_at: datetime
    contact_keys: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """The customer key a complaint takes, and its customer's earlier references."""

    key: str | None
    related: tuple[str, ...] = ()


@dataclass
class _Seen:
    """Points and complaints known while a batch is linked: the database's, then the batch's."""

    points: dict[str, str]
    # (contact key, customer key, received_at, reference) of complaints in the window.
    complaints: list[tuple[str, str, datetime, str]]


def resolve(connection: Connection, items: Sequence[Linkable]) -> list[Link]:
    """The link of each item, in order; items earlier in the batch count as known.

    ``related``: the complaints of the 12 months before an item that share one
    of its contact points or took the customer key it takes.
    """
    wanted = {key for item in items for key in item.contact_keys}
    if not wanted:
        return [Link(None) for _ in items]
    since = min(item.received_at for item in items) - RELATED_WINDOW
    points = _points(connection, wanted)
    customers = set(points.values()) | {item.contact_keys[0] for item in items if item.contact_keys}
    seen = _Seen(points, _window(connection, wanted, customers, since))
    return [_link(item, seen) for item in items]


def _link(item: Linkable, seen: _Seen) -> Link:
    if not item.contact_keys:
        return Link(None)
    known = [seen.points[key] for key in item.contact_keys if key in seen.points]
    key = known[0] if known else item.contact_keys[0]
    since = item.received_at - RELATED_WINDOW
    mine = set(item.contact_keys)
    earlier = sorted(
        {
            (received_at, reference)
            for point, customer, received_at, reference in seen.complaints
            if (point in mine or customer == key) and since <= received_at < item.received_at
        }
    )
    related = tuple(dict.fromkeys(reference for _at, reference in earlier))[-MAX_RELATED:]
    for point in item.contact_keys:
        if point not in seen.points:
            seen.points[point] = key
        seen.complaints.append((point, key, item.received_at, item.reference))
    return Link(key, related)


def _points(connection: Connection, wanted: Iterable[str]) -> dict[str, str]:
    rows = connection.execute(
        select(CustomerPointRow.contact_key, CustomerPointRow.customer_key).where(
            CustomerPointRow.contact_key.in_(list(wanted))
        )
    )
    return {point: key for point, key in rows}


def _window(
    connection: Connection, wanted: Iterable[str], customers: Iterable[str], since: datetime
) -> list[tuple[str, str, datetime, str]]:
    """Contact rows since ``since`` of these points or these customer keys, with references.

    At most the newest ``2 * MAX_RELATED`` rows per contact point: a point
    shared by thousands of complaints (a company's address) costs a bounded read.
    """
    matching = (
        select(
            ComplaintContactRow.contact_key,
            ComplaintContactRow.customer_key,
            ComplaintContactRow.received_at,
            ComplaintRow.reference,
            func.row_number()
            .over(
                partition_by=ComplaintContactRow.contact_key,
                order_by=ComplaintContactRow.received_at.desc(),
            )
            .label("rank"),
        )
        .join(ComplaintRow, ComplaintRow.id == ComplaintContactRow.complaint_id)
        .where(
            or_(
                ComplaintContactRow.contact_key.in_(list(wanted)),
                ComplaintContactRow.customer_key.in_(list(customers)),
            ),
            ComplaintContactRow.received_at >= since,
        )
        .subquery()
    )
    rows = connection.execute(
        select(
            matching.c.contact_key,
            matching.c.customer_key,
            matching.c.received_at,
            matching.c.reference,
        ).where(matching.c.rank <= 2 * MAX_RELATED)
    )
    return [tuple(row) for row in rows]


def record(connection: Connection, items: Sequence[Linkable], links: Sequence[Link]) -> None:
    """The rows of the linked items (their complaints inserted already), in this transaction.

    A point another transaction recorded meanwhile makes the insert fail
    (``IntegrityError``): the caller writes again and links to that one.
    """
    points: dict[str, tuple[str, datetime]] = {}
    contacts = []
    for item, link in zip(items, links, strict=True):
        if link.key is None:
            continue
        for point in item.contact_keys:
            points.setdefault(point, (link.key, item.received_at))
            contacts.append(
                {
                    "complaint_id": item.complaint_id,
                    "contact_key": point,
                    "customer_key": link.key,
                    "received_at": item.received_at,
                }
            )
    if not contacts:
        return
    known = _points(connection, points)
    fresh = [
        {"contact_key": point, "customer_key": key, "first_seen_at": at}
        for point, (key, at) in points.items()
        if point not in known
    ]
    if fresh:
        connection.execute(_INSERT_POINTS, fresh)
    connection.execute(_INSERT_CONTACTS, contacts)


@dataclass(frozen=True)
class CustomerView:
    """What the operator page shows of a complaint's customer."""

    key: str | None
    related: tuple[str, ...]


@dataclass(frozen=True)
class Backfilled:
    """What ``Customers.backfill`` did: complaints looked at, and those that got keys."""

    looked_at: int
    keyed: int


class Customers:
    """The customers' repository: listings by key, a complaint's links, the backfill."""

    def __init__(self, engine: Engine, secret: bytes) -> None:
        self.engine = engine
        self.secret = secret

    def key_exists(self, key: str) -> bool:
        with read_connection(self.engine) as connection:
            found = connection.scalar(
                select(ComplaintContactRow.complaint_id)
                .where(ComplaintContactRow.customer_key == key)
                .limit(1)
            )
        return found is not None

    def complaints_of(
        self, key: str, *, limit: int = 50, offset: int = 0
    ) -> list[ComplaintMessage]:
        """The complaints that took ``key``, newest first, from ``offset`` on."""
        mine = (
            select(ComplaintContactRow.complaint_id)
            .where(ComplaintContactRow.customer_key == key)
            .distinct()
        )
        query = (
            select(ComplaintRow.message)
            .where(ComplaintRow.id.in_(mine))
            .order_by(ComplaintRow.received_at.desc(), ComplaintRow.id)
            .limit(limit)
            .offset(offset)
        )
        with read_connection(self.engine) as connection:
            return [ComplaintMessage.model_validate_json(row) for row in connection.scalars(query)]

    def of_complaint(self, complaint_id: str) -> CustomerView:
        """The complaint's customer key and the references ``related`` would list for it now."""
        with read_connection(self.engine) as connection:
            rows = connection.execute(
                select(
                    ComplaintContactRow.contact_key,
                    ComplaintContactRow.customer_key,
                    ComplaintContactRow.received_at,
                ).where(ComplaintContactRow.complaint_id == complaint_id)
            ).all()
            if not rows:
                return CustomerView(None, ())
            key, received_at = rows[0][1], rows[0][2]
            points = [point for point, _key, _at in rows]
            earlier = connection.execute(
                select(ComplaintRow.reference, func.min(ComplaintContactRow.received_at))
                .join(ComplaintRow, ComplaintRow.id == ComplaintContactRow.complaint_id)
                .where(
                    or_(
                        ComplaintContactRow.contact_key.in_(points),
                        ComplaintContactRow.customer_key == key,
                    ),
                    ComplaintContactRow.received_at >= received_at - RELATED_WINDOW,
                    ComplaintContactRow.received_at < received_at,
                )
                .group_by(ComplaintRow.reference)
            ).all()
        ordered = sorted(earlier, key=lambda row: (row[1], row[0]))
        return CustomerView(key, tuple(row[0] for row in ordered)[-MAX_RELATED:])

    def backfill(
        self, *, batch: int = 500, progress: Callable[[int, int], None] | None = None
    ) -> Backfilled:
        """Link the complaints stored without contact rows, oldest first.

        Safe while the service runs, and to run again: each batch is one
        transaction, and a complaint linked meanwhile is not linked twice.
        The messages already published are left as they were (they carry no
        key); the rows give them one in listings and on the operator page.
        ``progress(looked_at, total)`` after each batch.
        """
        total = self._unlinked_count()
        looked_at = keyed = 0
        after: tuple[datetime, str] | None = None
        while True:
            with committing(self.engine) as connection:
                rows = connection.execute(_unlinked_after(after, batch)).all()
                items = [self._linkable(*row) for row in rows]
                record(connection, items, resolve(connection, items))
            if not rows:
                break
            looked_at += len(rows)
            keyed += sum(1 for item in items if item.contact_keys)
            after = (rows[-1][2], rows[-1][0])
            if progress is not None:
                progress(looked_at, total)
            if len(rows) < batch:
                break
        return Backfilled(looked_at=looked_at, keyed=keyed)

    def _linkable(
        self, complaint_id: str, reference: str, received_at: datetime, message: str
    ) -> Linkable:
        parsed = ComplaintMessage.model_validate_json(message)
        return Linkable(
            complaint_id,
            reference,
            received_at,
            tuple(contact_keys(parsed.customer, self.secret, parsed.origin)),
        )

    def _unlinked_count(self) -> int:
        query = select(func.count()).where(ComplaintRow.id.not_in(_LINKED))
        with read_connection(self.engine) as connection:
            return int(connection.scalar(query) or 0)


_LINKED = select(ComplaintContactRow.complaint_id)


def _unlinked_after(
    after: tuple[datetime, str] | None, batch: int
) -> Select[str, str, datetime, str]:
    """The next ``batch`` complaints without contact rows, past ``after`` (received_at, id)."""
    query = select(
        ComplaintRow.id, ComplaintRow.reference, ComplaintRow.received_at, ComplaintRow.message
    ).where(ComplaintRow.id.not_in(_LINKED))
    if after is not None:
        at, last = after
        query = query.where(
            or_(
                ComplaintRow.received_at > at,
                and_(ComplaintRow.received_at == at, ComplaintRow.id > last),
            )
        )
    return query.order_by(ComplaintRow.received_at, ComplaintRow.id).limit(batch)
