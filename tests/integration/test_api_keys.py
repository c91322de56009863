"""API keys: what authenticates, and how soon a revocation takes effect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.services import Services, build_services
from gateway.store import Store, apikeys, open_store
from gateway.store.apikeys import CACHE_SECONDS, ApiClient, ApiKeys
from gateway.store.db import alembic_config, create_store_engine
from tests.peers.processes import IntakeProcesses, env_for
from tests.peers.runners import normalize_captured
from tests.peers.webform import REFERENCE, fresh_form, valid_fields


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


def test_a_request_during_the_revocation_does_not_keep_the_key_alive(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ApiKeys(store.engine, clock=Clock())
    key = keys.create("crm")
    during: list[ApiClient | None] = []
    real_writing = apikeys.writing

    @contextmanager
    def writing_with_a_request(engine: Engine, **options: Any) -> Iterator[Session]:
        with real_writing(engine, **options) as session:
            yield session
            during.append(keys.authenticate(key))  # the UPDATE is not committed yet

    monkeypatch.setattr(apikeys, "writing", writing_with_a_request)
    assert keys.revoke("crm")

    assert during and during[0] is not None  # the old row, read before the commit
    assert keys.authenticate(key) is None


def test_a_lookup_under_way_during_the_revocation_is_not_remembered(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ApiKeys(store.engine, clock=Clock())
    key = keys.create("crm")
    real_lookup = keys._lookup

    def lookup_then_revoked(digest: str) -> ApiClient | None:
        monkeypatch.setattr(keys, "_lookup", real_lookup)  # once
        found = real_lookup(digest)  # read before the revocation...
        assert keys.revoke("crm")  # ...which commits before the answer is remembered
        return found

    monkeypatch.setattr(keys, "_lookup", lookup_then_revoked)
    assert keys.authenticate(key) is not None  # that request was under way: it passes

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


def test_rotation_gives_a_new_secret_under_the_same_identity(store: Store) -> None:
    keys = ApiKeys(store.engine)
    old = keys.create("crm")
    before = keys.authenticate(old)

    new = keys.rotate("crm")

    assert new is not None and new != old
    assert keys.authenticate(old) is None
    after = keys.authenticate(new)
    # Same id: dedup keys are scoped by it, so an Idempotency-Key retried
    # across the rotation still finds its complaint.
    assert before is not None and after is not None and after.id == before.id
    assert keys.rotate("nobody") is None


# -- which complaints a key reads back ------------------------------------------------
@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[TestClient, Services]]:
    services = build_services(settings)
    try:
        yield TestClient(create_app(services)), services
    finally:
        services.close()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_reads_its_own_complaints_not_another_partners(
    api: tuple[TestClient, Services],
) -> None:
    client, services = api
    crm = services.store.api_keys.create("crm")
    other = services.store.api_keys.create("other-partner")
    call_centre = services.store.api_keys.create("call-centre", {"complaints:read-all"})
    body = {"body": "Mon virement n'est pas arrivé.", "customer": {"phone": "0612345678"}}
    created = client.post("/v1/complaints", json=body, headers=_bearer(crm))
    assert created.status_code == 201, created.text
    normalize_captured(services)
    url = created.json()["status_url"]

    assert client.get(url, headers=_bearer(crm)).status_code == 200
    refused = client.get(url, headers=_bearer(other))
    # As if it did not exist: another partner learns nothing, not even that it does.
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    seen = client.get(url, headers=_bearer(call_centre))
    assert seen.status_code == 200
    assert seen.json()["complaint"]["customer"]["phone"] == "+212612345678"


def test_complaints_from_other_channels_are_read_only_by_keys_that_read_all(
    api: tuple[TestClient, Services],
) -> None:
    client, services = api
    crm = services.store.api_keys.create("crm")
    call_centre = services.store.api_keys.create("call-centre", {"complaints:read-all"})
    page = client.post("/fr/", data=valid_fields(fresh_form(client)))
    assert page.status_code == 200, page.text[-500:]
    found = REFERENCE.search(page.text)
    assert found is not None
    reference = found.group(0)
    normalize_captured(services)  # the form captured the post; a runner records it

    assert client.get(f"/v1/complaints/{reference}", headers=_bearer(crm)).status_code == 404
    seen = client.get(f"/v1/complaints/{reference}", headers=_bearer(call_centre))
    assert seen.status_code == 200 and seen.json()["complaint"]["channel"] == "webform"


# -- scopes: what a key may do ---------------------------------------------------------
def test_a_key_without_the_write_scope_cannot_submit_and_is_told_which_scope(
    api: tuple[TestClient, Services],
) -> None:
    client, services = api
    scanner = services.store.api_keys.create("scanner", {"letters:write"})
    body = {"body": "Mon virement n'est pas arrivé.", "customer": {"phone": "0612345678"}}

    refused = client.post("/v1/complaints", json=body, headers=_bearer(scanner))

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["code"], error["scope"]) == ("missing_scope", "complaints:write")
    assert "complaints:write" in error["message"]
    assert services.store.complaints.get_by_reference("CP-AAAA-AAAA") is None


def test_a_key_created_without_scopes_submits_and_reads_back_its_own_only(store: Store) -> None:
    keys = ApiKeys(store.engine)
    client = keys.authenticate(keys.create("crm"))

    assert client is not None
    assert client.scopes == {"complaints:write", "complaints:status"}
    assert client.may_read("crm") and not client.may_read("other") and not client.reads_all


def test_granting_a_scope_takes_effect_at_once_and_withdrawing_it_too(store: Store) -> None:
    keys = ApiKeys(store.engine, clock=Clock())
    key = keys.create("stt", {"transcripts:write"})
    assert keys.authenticate(key).scopes == {"transcripts:write"}  # type: ignore[union-attr]

    assert keys.change_scopes("stt", add={"complaints:read-all"}) == {
        "transcripts:write",
        "complaints:read-all",
    }
    assert keys.authenticate(key).reads_all  # type: ignore[union-attr]
    keys.change_scopes("stt", remove={"complaints:read-all"})
    assert not keys.authenticate(key).reads_all  # type: ignore[union-attr]
    assert keys.change_scopes("nobody", add={"origin:set"}) is None


def test_cli_creates_a_key_with_its_scopes_lists_them_and_refuses_an_unknown_one(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    env = env_for(settings)
    created = intake_processes.run(
        "api-key", "create", "stt", "--scope", "transcripts:write", "--read-all", env=env
    )
    assert created.popen.returncode == 0, created.describe()
    assert intake_processes.run("api-key", "create", "crm", env=env).popen.returncode == 0

    unknown = intake_processes.run("api-key", "create", "x", "--scope", "letters:read", env=env)
    listed = intake_processes.run("api-key", "list", env=env).stdout()

    assert unknown.popen.returncode == 2
    assert "'letters:read' is not one of" in unknown.stderr()
    rows = {line.split("\t")[0]: line.split("\t")[-1] for line in listed.splitlines()}
    assert rows == {
        "stt": "complaints:read-all,transcripts:write",
        "crm": "complaints:status,complaints:write",
    }


def test_migration_gives_existing_keys_what_they_could_do_and_no_new_power(
    tmp_path: Path,
) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0010")
    with engine.begin() as connection:
        for name, reads_all in (("crm", False), ("call-centre", True)):
            connection.execute(
                text(
                    "INSERT INTO api_keys (id, name, key_hash, prefix, created_at, reads_all)"
                    " VALUES (:id, :name, :hash, 'cpk_x', CURRENT_TIMESTAMP, :reads_all)"
                ),
                {"id": name, "name": name, "hash": name * 8, "reads_all": reads_all},
            )

    command.upgrade(config, "0011")

    scopes = {name: found for name, _p, _c, _r, found in ApiKeys(engine).list()}
    engine.dispose()
    assert scopes == {
        "crm": {"complaints:write", "complaints:status", "letters:write"},
        "call-centre": {
            "complaints:write",
            "complaints:status",
            "letters:write",
            "complaints:read-all",
        },
    }
