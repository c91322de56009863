"""API keys: what authenticates, and how soon a revocation takes effect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import Settings
from gateway.store import Store, open_store
from gateway.store.apikeys import CACHE_SECONDS, ApiKeys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings, migrate_schema=True)
    try:
        yield opened
    finally:
        opened.engine.dispose()


def test_a_key_authenticates_and_a_wrong_one_does_not(store: Store) -> None:
    keys = ApiKeys(store.engine)
    key = keys.create("crm")

    client = keys.authenticate(key)

    assert client is not None and client.name == "crm" and key.startswith(client.prefix)
    assert keys.authenticate(key + "x") is None
    assert keys.authenticate("") is None


def test_revoked_in_this_process_the_key_stops_at_once(store: Store) -> None:
    keys = ApiKeys(store.engine, clock=Clock())
    key = keys.create("crm")
    assert keys.authenticate(key) is not None

    assert keys.revoke("crm")

    assert keys.authenticate(key) is None


def test_revoked_in_another_process_the_key_stops_within_the_cache_time(store: Store) -> None:
    clock = Clock()
    web = ApiKeys(store.engine, clock=clock)
    key = web.create("crm")
    assert web.authenticate(key) is not None

    assert ApiKeys(store.engine).revoke("crm")  # an operator's `intake api-key revoke`

    clock.now += CACHE_SECONDS / 2
    assert web.authenticate(key) is not None  # still remembered
    clock.now += CACHE_SECONDS
    assert web.authenticate(key) is None


def test_a_refusal_is_not_remembered(store: Store) -> None:
    clock = Clock()
    web = ApiKeys(store.engine, clock=clock)
    assert web.authenticate("cpk_not-yet") is None
    # A key made meanwhile elsewhere works on the next request, not after a delay.
    key = ApiKeys(store.engine).create("new-partner")

    assert web.authenticate(key) is not None
