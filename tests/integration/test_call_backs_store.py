"""The calls-to-return repository on SQLite and PostgreSQL: one row per call, the reason
an empty message gives, a complaint named once, "called back" once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from gateway.store import Store

CALLER = "+212661234567"
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _note(store: Store, call_sid: str, reason: str, reference: str | None = None) -> None:
    store.call_backs.note(
        call_sid,
        caller=CALLER,
        language="fr",
        reason=reason,
        received_at=START,
        reference=reference,
    )


def test_a_repeat_is_one_row_and_an_empty_message_replaces_missed_while_open(
    store: Store,
) -> None:
    open_sid, done_sid = f"CA{uuid.uuid4().hex}", f"CA{uuid.uuid4().hex}"
    for call_sid in (open_sid, done_sid):
        _note(store, call_sid, "missed")
        _note(store, call_sid, "missed")
    (done,) = [item for item in store.call_backs.listing() if item.call_sid == done_sid]
    store.call_backs.mark_done(done.id, "karim", None)

    _note(store, open_sid, "empty_message", "CP-7K4M-9QXT")
    _note(store, done_sid, "empty_message")
    _note(store, open_sid, "out_of_hours_no_message")

    (still_open,) = store.call_backs.listing()
    assert (still_open.call_sid, still_open.reason) == (open_sid, "empty_message")
    assert still_open.reference == "CP-7K4M-9QXT"
    (returned,) = store.call_backs.listing(done=True)
    assert (returned.call_sid, returned.reason) == (done_sid, "missed")
    assert store.call_backs.counts() == {"open": 1, "done": 1}


def test_link_names_a_complaint_once_and_the_list_is_oldest_call_first(store: Store) -> None:
    later, earlier = f"CA{uuid.uuid4().hex}", f"CA{uuid.uuid4().hex}"
    _note(store, later, "missed")
    store.call_backs.note(
        earlier,
        caller=CALLER,
        language=None,
        reason="missed",
        received_at=START - timedelta(hours=3),
    )

    assert store.call_backs.link(later, "CP-7K4M-9QXT")
    assert not store.call_backs.link(later, "CP-AAAA-BBBB")
    assert not store.call_backs.link(f"CA{uuid.uuid4().hex}", "CP-AAAA-BBBB")

    first, second = store.call_backs.listing()
    assert (first.call_sid, second.call_sid) == (earlier, later)
    assert second.reference == "CP-7K4M-9QXT"


def test_called_back_once_keeps_the_first_who_and_note(store: Store) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    _note(store, call_sid, "missed")
    (item,) = store.call_backs.listing()

    first = store.call_backs.mark_done(item.id, "karim", "  pas de réponse, rappeler demain  ")
    second = store.call_backs.mark_done(item.id, "amina", "autre note")

    assert first is not None and second is not None
    assert first[1] is True and second[1] is False
    assert (second[0].done_by, second[0].outcome) == ("karim", "pas de réponse, rappeler demain")
    assert store.call_backs.mark_done(str(uuid.uuid4()), "karim", None) is None
