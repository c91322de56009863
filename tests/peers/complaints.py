"""Complaints for integration tests, recorded through the store's real hand-off.

``record`` goes through the same path as a channel (normalize, then
``record_complaint``), with a declared language so the routing key is known
in advance. ``outbox_rows`` and ``count_rows`` read the tables the way an
operator would, to check what a test did to them. ``failing_inserts_into``
makes the database refuse one table's inserts, as a full disk would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError

from gateway.store import Store
from gateway.store.db import reading
from gateway.store.intake import IntakeResult
from gateway.store.tables import OutboxRow
from normalizer.contract import Channel, Customer
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.pipeline import PipelineContext, normalize


def complaint_input(
    *,
    channel: Channel = Channel.API,
    language: str = "fr",
    dedup_key: str | None = None,
    request_hash: str | None = None,
    body: str | None = None,
) -> tuple[RawInput, ComplaintDraft]:
    """A raw input and its normalized draft, unique unless ``dedup_key`` is given."""
    now = datetime.now(UTC)
    text = body or f"Réclamation de test {uuid.uuid4()}: mon transfert n'est pas arrivé."
    raw = RawInput(
        channel=channel,
        data=text.encode(),
        content_type="text/plain; charset=utf-8",
        received_at=now,
        dedup_key=dedup_key or f"test:{uuid.uuid4()}",
        source_ids={"upload_id": str(uuid.uuid4())},
        request_hash=request_hash,
    )
    draft = ComplaintDraft(
        channel=channel,
        received_at=now,
        body=text,
        customer=Customer(phone="+212612345678"),
        declared_language=language,
    )
    normalize(draft, PipelineContext())
    return raw, draft


def record(store: Store, **kwargs: Any) -> IntakeResult:
    raw, draft = complaint_input(**kwargs)
    return store.complaints.record_complaint(raw, draft)


def count_rows(store: Store, model: type[Any]) -> int:
    with reading(store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def outbox_rows(store: Store) -> list[OutboxRow]:
    with reading(store.engine) as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


@contextmanager
def failing_inserts_into(engine: Engine, table: str) -> Iterator[None]:
    """Inside the block, every ``INSERT INTO table`` fails as an I/O error of the database."""
    prefix = f"INSERT INTO {table.upper()}"

    def refuse(
        _conn: object,
        _cursor: object,
        statement: str,
        parameters: Any,
        _context: object,
        _executemany: bool,
    ) -> None:
        if statement.lstrip().upper().startswith(prefix):
            raise OperationalError(statement, parameters, OSError("disk I/O error"))

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
