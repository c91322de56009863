"""The web form as tests reach it: a real ``intake web`` process and helpers around it.

``start_web`` runs the HTTP server as an operator would (a subprocess with
``INTAKE_*`` settings), with an ``intake normalize-worker`` beside it (the
form captures, the runner records the complaint: ``settle_web`` waits for
it); ``queued_complaints`` publishes the outbox with ``intake relay --once``
and reads what reached ``complaints.inbound``, the way a downstream consumer
sees it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from config.settings import Settings
from gateway.store import open_store
from router.consumer import consume_messages
from tests.peers.processes import (
    IntakeProcess,
    IntakeProcesses,
    env_for,
    free_port,
    wait_for_port,
    wait_until,
)

REFERENCE = re.compile(r"CP-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class WebService:
    process: IntakeProcess
    url: str
    env: dict[str, str]


def start_web(
    processes: IntakeProcesses, settings: Settings, *, runner: bool = True, **extra: object
) -> WebService:
    """``intake web``, and an ``intake normalize-worker`` unless ``runner`` is False.

    Without a runner the form's posts stay captured (not complaints yet).
    """
    port = free_port()
    env = env_for(settings, http_port=port, **extra)
    process = processes.start("web", env=env)
    if runner:
        processes.start("normalize-worker", env=env)
    wait_for_port(port, process)
    return WebService(process=process, url=f"http://127.0.0.1:{port}", env=env)


def settle_web(settings: Settings) -> None:
    """Wait until the runner has made every captured post a complaint (or quarantined it)."""
    store = open_store(settings, migrate_schema=False)
    try:
        wait_until(lambda: not store.captures.backlog(), "the captured posts to be normalized")
    finally:
        store.close()


def queued_complaints(
    processes: IntakeProcesses, web: WebService, settings: Settings, count: int
) -> list[dict[str, Any]]:
    """Once the runner is done, publish the outbox once, then read ``count`` complaints."""
    settle_web(settings)
    relay = processes.run("relay", "--once", env=web.env)
    assert relay.popen.returncode == 0, relay.describe()
    bodies: list[str] = []
    consume_messages(settings, bodies.append, count=count, timeout=20)
    assert len(bodies) == count, f"expected {count} complaint(s) on the queue, got {len(bodies)}"
    return [json.loads(body)["data"] for body in bodies]


def fresh_form(client: httpx.Client, path: str = "/") -> str:
    """GET the form (sets the cookie) and return its CSRF token."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = TOKEN.search(page.text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def valid_fields(token: str, **overrides: str) -> dict[str, str]:
    fields = {
        "csrf_token": token,
        "name": "Fatima Zahra",
        "phone": "06 61 23 45 67",
        "email": "",
        "product": "money_transfer",
        "transaction_reference": "TR-2026-0042",
        "text": "Mon transfert envoyé hier n'est toujours pas arrivé chez mon frère à Agadir.",
        "preferred_language": "fr",
        "preferred_contact": "sms",
    }
    fields.update(overrides)
    return fields
