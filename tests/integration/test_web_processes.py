"""Several web processes on one host share the HTTP port and the store."""

from __future__ import annotations

import signal
import socket

import httpx

from config.settings import Settings
from tests.peers.processes import IntakeProcesses, env_for, free_port, wait_for_port


def test_two_web_processes_share_one_port_and_each_captures_complaints(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    port = free_port()
    env = env_for(settings, http_port=port, log_level="INFO")
    created = intake_processes.run("api-key", "create", "crm", env=env)
    key = created.stdout().strip()
    webs = [intake_processes.start("web", env=env) for _ in range(2)]
    for process in webs:
        wait_for_port(port, process, timeout=60)

    for number in range(40):
        # A new connection each time: the kernel picks a process per connection.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            answer = client.post(
                "/v1/complaints",
                json={
                    "body": f"Réclamation {number}: transfert bloqué.",
                    "language": "fr",
                    "customer": {"phone": "+212612345678"},
                },
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"k-{number}"},
            )
        assert answer.status_code == 201, answer.text

    for process in webs:
        process.signal(signal.SIGTERM)
        process.wait()
    # Each edge captured its share (the runners record the complaints).
    handled = [process.stderr().count("captured complaint") for process in webs]
    assert sum(handled) == 40 and all(handled), handled
    runner = intake_processes.run("normalize-worker", "--once", env=env)
    assert runner.popen.returncode == 0, runner.describe()
    assert runner.stdout().strip() == "40 normalized, 0 quarantined", runner.describe()


def test_web_on_a_port_held_by_another_program_exits_69_with_one_line(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = intake_processes.run("web", env=env_for(settings, http_port=port))
    lines = done.stderr().strip().splitlines()
    assert done.popen.returncode == 69, done.describe()
    assert lines[-1].startswith(f"Error: cannot listen on 127.0.0.1:{port}"), lines
