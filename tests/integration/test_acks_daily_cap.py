"""The per-recipient daily cap and the global budgets hold with several workers (SQLite, PG).

Two acknowledgers (two workers) in two threads handle two complaints of the
same customer with a cap of one a day. Both count the customer's
acknowledgements before either takes a place (a barrier holds them there),
which is the race: the place is taken in the database, in the transaction
that counts, so exactly one acknowledgement goes out and the other
complaint is skipped for the daily limit. The global daily budget (two
customers, one place left in the day's e-mail budget) holds the same way:
one goes out, the other waits for the next day.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import load_settings
from gateway.acks.acknowledger import Acknowledger
from gateway.acks.policy import EMAIL
from gateway.acks.senders import Outgoing, Sent
from gateway.lib.services import Services, build_services
from gateway.store.acks import AckRecord
from normalizer.contract import Channel, Customer
from tests.peers.acks import other_complaint

CUSTOMER = Customer(name="Nadia", email="nadia@example.ma")
TEXT = "Bonjour, le retrait de 500 dirhams à Tanger a échoué mais mon compte est débité."


class Recording:
    """A sender that takes every acknowledgement (the race is in the store, not the relay)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def send(self, outgoing: Outgoing) -> Sent:
        with self.lock:
            self.sent.append(outgoing.message.reference)
        return Sent(evidence=b"sent", content_type="text/plain")


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Services]:
    changes: dict[str, object] = {
        "smtp_relay_url": SecretStr("smtp://127.0.0.1:9"),  # e-mail configured
        "ack_max_per_recipient_per_day": 1,
    }
    if request.param == "postgresql":
        changes["database_url"] = request.getfixturevalue("postgres_url")
    built = build_services(load_settings(data_dir=data_dir, **changes))
    try:
        yield built
    finally:
        built.close()


def counting_together(
    acknowledger: Acknowledger, barrier: threading.Barrier
) -> Callable[[str], int]:
    """``sent_today`` that waits, after its first count, until the other worker counted too."""
    count = acknowledger.acks.sent_today
    first = threading.Event()

    def counted(recipient: str) -> int:
        found = count(recipient)
        if not first.is_set():
            first.set()
            barrier.wait(timeout=30)
        return found

    return counted


def test_two_workers_racing_for_the_last_place_send_one_acknowledgement(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    complaints = [other_complaint(services, Channel.API, TEXT, CUSTOMER) for _ in range(2)]
    sender = Recording()
    barrier = threading.Barrier(2)
    rows: list[AckRecord] = []

    def worker(index: int) -> None:
        acknowledger = Acknowledger(services, senders={EMAIL: sender})
        monkeypatch.setattr(
            acknowledger.acks, "sent_today", counting_together(acknowledger, barrier)
        )
        rows.append(acknowledger.handle(complaints[index]))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(row.status for row in rows) == ["sent", "skipped"]
    assert len(sender.sent) == 1
    [skipped] = [row for row in rows if row.status == "skipped"]
    assert skipped.reason == "recipient_daily_limit"


def counting_budget_together(
    acknowledger: Acknowledger, barrier: threading.Barrier
) -> Callable[..., int]:
    """``budget_used_today`` that waits, after its first count, until the other worker counted."""
    count = acknowledger.acks.budget_used_today
    first = threading.Event()

    def counted(methods: Sequence[str], now: datetime | None = None) -> int:
        found = count(methods, now)
        if not first.is_set():
            first.set()
            barrier.wait(timeout=30)
        return found

    return counted


def test_two_workers_racing_for_the_last_place_of_the_global_budget_send_one(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S4/S5: the global daily budget is exact across workers, like the per-recipient cap.
    customers = [Customer(email=f"client{n}@example.ma") for n in range(2)]
    complaints = [other_complaint(services, Channel.API, TEXT, c) for c in customers]
    sender = Recording()
    barrier = threading.Barrier(2)
    rows: list[AckRecord] = []

    def worker(index: int) -> None:
        acknowledger = Acknowledger(services, senders={EMAIL: sender})
        acknowledger.context = replace(acknowledger.context, budgets={"email": 1})
        monkeypatch.setattr(
            acknowledger.acks, "budget_used_today", counting_budget_together(acknowledger, barrier)
        )
        rows.append(acknowledger.handle(complaints[index]))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(row.status for row in rows) == ["sending", "sent"]
    assert len(sender.sent) == 1
    [waiting] = [row for row in rows if row.status == "sending"]
    assert waiting.reason == "daily_budget_exhausted" and waiting.method is None
