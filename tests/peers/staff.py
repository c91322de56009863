"""A gateway process with a staff account, for the pages behind the staff login.

The account is made the way an operator makes one (``intake users add NAME
--password-stdin``), then the process is started and waited for.
"""

from __future__ import annotations

import subprocess
from typing import Any

from tests.peers.processes import INTAKE, IntakeProcesses, wait_for_port


def add_staff_user(env: dict[str, str], name: str, password: str) -> None:
    subprocess.run(
        [INTAKE, "users", "add", name, "--password-stdin"],
        input=f"{password}\n".encode(),
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )


def serve_with_staff(
    processes: IntakeProcesses,
    env: dict[str, str],
    port: int,
    user: tuple[str, str],
    command: str = "run",
) -> str:
    """Add ``user`` (name, password), start ``intake COMMAND`` on ``port``; its base URL."""
    add_staff_user(env, *user)
    process = processes.start(command, env=env)
    wait_for_port(port, process, timeout=60)
    return f"http://127.0.0.1:{port}"


def log_in(page: Any, base: str, path: str, user: tuple[str, str]) -> None:
    """Open ``path`` in the browser, sign in on the staff login it leads to, land on ``path``."""
    page.goto(base + path)
    assert "/staff/login" in page.url
    page.fill("#name", user[0])
    page.fill("#password", user[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")
