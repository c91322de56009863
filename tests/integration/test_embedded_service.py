"""The one-command embedded default: ``intake run`` with SQLite and the filesystem broker.

What a developer or a single small machine does: create an API key, start
``intake run``, post a complaint over HTTP, read it with ``intake consume``
from another process, stop the service with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal

import httpx
import pytest

from config.settings import Settings
from tests.peers.processes import (
    IntakeProcess,
    IntakeProcesses,
    env_for,
    free_port,
    wait_for_port,
    wait_until,
)
from tests.peers.services import port_open


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return env_for(settings, http_port=free_port())


def start_service(intake_processes: IntakeProcesses, env: dict[str, str]) -> IntakeProcess:
    service = intake_processes.start("run", env=env)
    wait_for_port(int(env["INTAKE_HTTP_PORT"]), service)
    return service


def test_complaint_posted_over_http_reaches_a_consumer_in_another_process(
    intake_processes: IntakeProcesses, env: dict[str, str]
) -> None:
    created_key = intake_processes.run("api-key", "create", "crm", env=env)
    assert created_key.popen.returncode == 0, created_key.describe()
    key = created_key.stdout().strip()
    start_service(intake_processes, env)

    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}") as http:
        response = http.post(
            "/v1/complaints",
            headers=auth,
            json={
                "body": "Salam, bghit n3ref 3lach lflouss ma wslatch, transfert dyal lbareh.",
                "customer": {"phone": "+212 6 12 34 56 78"},
            },
        )
        consumer = intake_processes.run("consume", "--count", "1", "--timeout", "30", env=env)
        # The relay marks the row just after the broker took it: poll, don't race.
        wait_until(
            # Location is on INTAKE_PUBLIC_BASE_URL; this client talks to the process.
            lambda: http.get(httpx.URL(response.headers["Location"]).path, headers=auth).json()[
                "published"
            ],
            "the status to say published",
        )

    assert response.status_code == 201, response.text
    assert consumer.popen.returncode == 0, consumer.describe()
    [event] = consumer.json_lines()
    assert event["id"] == response.json()["id"]
    assert event["subject"] == response.json()["reference"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_intake_run_cleanly(
    intake_processes: IntakeProcesses, env: dict[str, str], signum: int
) -> None:
    service = start_service(intake_processes, env)

    service.signal(signum)
    code = service.wait(30)

    assert code == 0, service.describe()
    assert "gateway stopped" in service.stderr()
    assert "Aborted" not in service.stderr()
    assert not port_open("127.0.0.1", int(env["INTAKE_HTTP_PORT"]))


def test_complaint_accepted_before_a_stop_is_published_after_a_restart(
    intake_processes: IntakeProcesses, env: dict[str, str]
) -> None:
    key = intake_processes.run("api-key", "create", "crm", env=env).stdout().strip()
    # No relay yet: only the web process runs, as when the relay is down.
    web = intake_processes.start("web", env=env)
    wait_for_port(int(env["INTAKE_HTTP_PORT"]), web)
    with httpx.Client(base_url=f"http://127.0.0.1:{env['INTAKE_HTTP_PORT']}") as http:
        response = http.post(
            "/v1/complaints",
            headers={"Authorization": f"Bearer {key}"},
            json={"body": "Mon retrait est bloqué.", "customer": {"email": "amina@example.ma"}},
        )
    web.signal(signal.SIGTERM)
    web.wait(30)
    assert response.status_code == 201

    start_service(intake_processes, env)
    consumer = intake_processes.run("consume", "--count", "1", "--timeout", "30", env=env)

    assert consumer.popen.returncode == 0, consumer.describe()
    [event] = consumer.json_lines()
    assert event["id"] == response.json()["id"]
    assert event["data"]["channel"] == "api"  # type: ignore[index]
