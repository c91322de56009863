"""Fault-injection tests' common parts: the gateway under test, and what they count.

``start_gateway`` runs ``intake run`` (web, relay and the channel workers in
one process, as a small machine runs it) with an API key made for it.

Every fault test ends the same way: read what the store holds and what
reached the queue, then report ``sent, stored, published, consumed, lost,
duplicated`` on the test output (even without ``-s``) and assert the two
promises: nothing a source was told is recorded went missing, and no input
became two complaints (one input, one id; a redelivery of the same id is
allowed and counted as duplicated).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from router.consumer import consume_messages
from tests.peers.processes import IntakeProcess, IntakeProcesses, env_for, free_port, wait_for_port

# Long versions (scripts/faults): read once at import, before the test
# fixtures clear INTAKE_* from the environment.
LONG = os.environ.get("INTAKE_LONG_FAULTS") == "1"


@dataclass
class Gateway:
    process: IntakeProcess
    base: str  # http://127.0.0.1:<port>
    key: str  # a partner API key
    env: dict[str, str]


def start_gateway(
    processes: IntakeProcesses, settings: Settings, *, key: str | None = None, **extra: object
) -> Gateway:
    """``intake run`` with ``settings`` (plus ``extra`` INTAKE_* values), listening."""
    env = env_for(settings, **{"http_port": free_port(), **extra})
    if key is None:
        created = processes.run("api-key", "create", "faults", env=env)
        assert created.popen.returncode == 0, created.describe()
        key = created.stdout().strip()
    process = processes.start("run", env=env)
    wait_for_port(int(env["INTAKE_HTTP_PORT"]), process, timeout=60)
    return Gateway(process, f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}", key, env)


@dataclass
class Figures:
    name: str
    sent: int
    stored: int
    published: int
    consumed: int  # distinct complaint ids read from the queue
    lost: int
    duplicated: int  # deliveries of an id already read
    two_ids: int = 0  # inputs that became more than one complaint
    extra: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        more = "".join(f", {key} {value}" for key, value in self.extra.items())
        return (
            f"[fault figures] {self.name}: sent {self.sent}, stored {self.stored}, "
            f"published {self.published}, consumed {self.consumed}, lost {self.lost}, "
            f"duplicated {self.duplicated}, inputs with two ids {self.two_ids}{more}"
        )

    def report(self, capsys: pytest.CaptureFixture[str]) -> None:
        with capsys.disabled():
            print("\n" + self.line())

    def assert_promises(self) -> None:
        assert self.lost == 0, self.line()
        assert self.two_ids == 0, self.line()


def read_queue(settings: Settings, *, silence: float = 5.0) -> list[dict[str, Any]]:
    """Every complaint event on ``complaints.inbound`` until ``silence`` seconds of nothing."""
    bodies: list[str] = []
    consume_messages(settings, bodies.append, timeout=silence)
    return [json.loads(body) for body in bodies]


def sqlite_counts(database: Path) -> tuple[int, int]:
    """(complaints stored, outbox rows published) in a store another process writes."""
    if not database.exists():
        return 0, 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        try:
            (stored,) = connection.execute("SELECT count(*) FROM complaints").fetchone()
            (published,) = connection.execute(
                "SELECT count(DISTINCT event_id) FROM outbox WHERE published_at IS NOT NULL"
            ).fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return 0, 0
    return int(stored), int(published)


def sqlite_captures_pending(database: Path) -> int:
    """Captured inputs no runner has normalized yet, in a store another process writes."""
    if not database.exists():
        return 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        try:
            (pending,) = connection.execute(
                "SELECT count(*) FROM intake WHERE state = 'captured'"
            ).fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return 0
    return int(pending)


def tally(
    name: str,
    *,
    sent: int,
    acknowledged: Iterable[str],
    events: list[dict[str, Any]],
    key_of: Callable[[dict[str, Any]], str | None],
    database: Path,
    extra: dict[str, object] | None = None,
) -> Figures:
    """Compare the inputs a source was told are recorded with what reached the queue.

    ``acknowledged``: the keys of inputs that got a positive answer;
    ``key_of``: the same key read back from a complaint (its ``data``).
    """
    ids_by_key: dict[str, set[str]] = defaultdict(set)
    for event in events:
        key = key_of(event["data"])
        if key is not None:
            ids_by_key[key].add(str(event["id"]))
    distinct = {str(event["id"]) for event in events}
    stored, published = sqlite_counts(database)
    return Figures(
        name=name,
        sent=sent,
        stored=stored,
        published=published,
        consumed=len(distinct),
        lost=sum(1 for key in set(acknowledged) if key not in ids_by_key),
        duplicated=len(events) - len(distinct),
        two_ids=sum(1 for ids in ids_by_key.values() if len(ids) > 1),
        extra=extra or {},
    )
