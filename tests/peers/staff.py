"""A gateway process with a staff account, for the pages behind the staff login;
``StaffBrowser``, a member's browser over plain HTTP (``log_in_over_http``).

The account is made the way an operator makes one (``intake staff add NAME
--role ROLE --password-stdin``; ``admin`` unless the test says otherwise,
so a test sees every page), then the process is started and waited for.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import httpx

from tests.peers.processes import INTAKE, IntakeProcesses, wait_for_port


def add_staff_user(env: dict[str, str], name: str, password: str, role: str = "admin") -> None:
    subprocess.run(
        [INTAKE, "staff", "add", name, "--role", role, "--password-stdin"],
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
    role: str = "admin",
) -> str:
    """Add ``user`` (name, password) with ``role``, start ``intake COMMAND`` on ``port``."""
    add_staff_user(env, *user, role=role)
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


def logged_in_client(services: Any, name: str, password: str, role: str = "operator") -> Any:
    """An in-process client (``TestClient``) logged in as a new member ``name`` with ``role``."""
    import re

    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.lib.http.auth import accounts_for

    accounts_for(services).add(name, password, role=role)
    client = TestClient(create_app(services), headers={"Accept": "text/html"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text)
    assert token
    answer = client.post(
        "/staff/login",
        data={"name": name, "password": password, "csrf_token": token.group(1), "next": "/ops/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class StaffBrowser:
    """A staff member's browser on the gateway. The line's public URL is https, so the
    staff cookies are ``Secure``: kept here and sent by hand over the test's plain HTTP."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        headers = {"Accept": "text/html", **({"Cookie": cookie} if cookie else {})}
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.cookies.update({name: value for name, value in response.cookies.items()})
        return response

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.request("POST", path, data=data)


def log_in_over_http(base_url: str, user: tuple[str, str], next_path: str) -> StaffBrowser:
    """A browser signed in as ``user`` (name, password) through the login form."""
    browser = StaffBrowser(base_url)
    token = CSRF_FIELD.search(browser.get("/staff/login").text)
    assert token
    login = browser.post(
        "/staff/login",
        data={
            "name": user[0],
            "password": user[1],
            "csrf_token": token.group(1),
            "next": next_path,
        },
    )
    assert login.status_code == 303, login.text
    return browser
