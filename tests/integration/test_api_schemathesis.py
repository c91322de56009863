"""Schemathesis against the OpenAPI document of a running ``intake web``.

Requests generated from ``/openapi.json`` (valid and invalid bodies, path
parameters, headers) go to the partner API and the operator endpoints over
real HTTP, with a real API key. Every answer must be a documented status
code with the documented content type and body shape, and never a 5xx.

Twilio webhooks (signed, so every generated request is a 403) and the
letter upload (every example would be an OCR job) are left to their own
tests; ``OPERATIONS`` lists the rest, and a test fails when the document
grows an operation this list does not cover. Short in CI;
``INTAKE_LONG_FUZZ=1`` (``scripts/fuzz``) sends a hundred times more.

Schemathesis's own pytest plugin (``from_fixture``) does not run under
pytest 9, so each operation's strategy is drawn with Hypothesis here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.store.apikeys import SCOPES
from tests.peers.processes import IntakeProcesses, free_port, intake_env, wait_for_port

LONG = bool(os.environ.get("INTAKE_LONG_FUZZ"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [
    ("POST", "/v1/complaints"),
    ("GET", "/v1/complaints/{reference}"),
    ("POST", "/v1/complaints/{reference}/status"),
    ("GET", "/v1/customers/{key}/complaints"),
    ("POST", "/v1/calls/{call_sid}/transcript"),
    ("GET", "/v1/letters/{letter_id}"),
    ("GET", "/v1/acks/letters"),
    ("GET", "/v1/acks/letters/{ack_id}/pdf"),
    ("POST", "/v1/acks/letters/{ack_id}/posted"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
LEFT_TO_OTHER_TESTS = ("/twilio/", "/v1/letters")
# Checks skipped for one operation, with the reason; none today.
EXCUSED: dict[tuple[str, str], Any] = {}

# Every route a key may use, so each is exercised past its scope check.
SCOPE_ARGS = [arg for scope in SCOPES for arg in ("--scope", scope)]


def modes_for(operation: Any) -> list[Any]:
    """Valid requests, and invalid ones where the operation takes anything to spoil."""
    takes_input = bool(operation.path_parameters or operation.body or operation.query)
    return [schemathesis.GenerationMode.POSITIVE] + (
        [schemathesis.GenerationMode.NEGATIVE] if takes_input else []
    )


@pytest.fixture(scope="module")
def running_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    processes = IntakeProcesses(
        workdir=root, env=intake_env(data_dir=root / "var", http_port=port, log_level="WARNING")
    )
    try:
        key = processes.run("api-key", "create", "schemathesis", *SCOPE_ARGS).stdout().strip()
        web = processes.start("web")
        wait_for_port(port, web)
        yield f"http://127.0.0.1:{port}", key
        assert web.running(), web.describe()
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def api_schema(running_api: tuple[str, str]) -> Any:
    base, _key = running_api
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_every_operation_of_the_document_is_fuzzed_or_tested_elsewhere(api_schema: Any) -> None:
    documented = {
        (operation.method.upper(), operation.path)
        for result in api_schema.get_all_operations()
        for operation in [result.ok()]
    }
    uncovered = {
        (method, path)
        for method, path in documented - set(OPERATIONS)
        if not (path.startswith(LEFT_TO_OTHER_TESTS[0]) or path == LEFT_TO_OTHER_TESTS[1])
    }
    assert uncovered == set()
    assert set(OPERATIONS) <= documented


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_answers_only_documented_codes_and_never_5xx(
    api_schema: Any, running_api: tuple[str, str], method: str, path: str
) -> None:
    base, key = running_api
    operation = api_schema[path][method]
    checks = [check for check in CHECKS if check is not EXCUSED.get((method, path))]

    @settings(
        max_examples=25 * (100 if LONG else 1),
        deadline=timedelta(seconds=20),
        suppress_health_check=list(HealthCheck),
        derandomize=not LONG,
        database=None,
    )
    @given(case=st.one_of(*(operation.as_strategy(mode) for mode in modes_for(operation))))
    def exchange(case: Any) -> None:
        case.call_and_validate(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, checks=checks
        )

    exchange()
