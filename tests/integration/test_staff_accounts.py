"""Staff accounts: the users command, login with CSRF, sessions, logout, pages behind login."""

import re
import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.http.auth import SESSION_COOKIE, accounts_for
from gateway.lib.services import Services, build_services
from gateway.store.db import reading
from gateway.store.tables import StaffUserRow
from tests.peers.processes import INTAKE, IntakeProcesses, env_for

PASSWORD = "courrier-2025-casa"


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    accounts_for(built).add("amina", PASSWORD)
    yield built
    built.close()


@pytest.fixture
def browser_like(services: Services) -> TestClient:
    return TestClient(create_app(services), headers={"Accept": "text/html"}, follow_redirects=False)


def login_token(client: TestClient) -> str:
    page = client.get("/staff/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def log_in(client: TestClient, password: str = PASSWORD):
    token = login_token(client)
    return client.post(
        "/staff/login",
        data={"name": "amina", "password": password, "csrf_token": token, "next": "/letters/"},
    )


def page_csrf(client: TestClient) -> str:
    found = re.search(r'data-csrf="([^"]+)"', client.get("/letters/").text)
    assert found
    return found.group(1)


def test_upload_page_sends_an_anonymous_browser_to_login(browser_like: TestClient) -> None:
    answer = browser_like.get("/letters/")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/staff/login?next=/letters/")


def test_status_api_of_the_page_needs_a_session(browser_like: TestClient) -> None:
    answer = browser_like.get("/letters/status/x", headers={"Accept": "application/json"})
    assert answer.status_code == 401


def test_right_password_opens_a_session_and_the_page(browser_like: TestClient) -> None:
    answer = log_in(browser_like)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/letters/"
    assert browser_like.get("/letters/").status_code == 200


def test_wrong_password_is_refused(browser_like: TestClient) -> None:
    answer = log_in(browser_like, "not-the-password")
    assert answer.status_code == 401
    assert SESSION_COOKIE not in browser_like.cookies


def test_login_without_its_csrf_token_is_refused(browser_like: TestClient) -> None:
    browser_like.get("/staff/login")
    answer = browser_like.post("/staff/login", data={"name": "amina", "password": PASSWORD})
    assert answer.status_code == 403
    assert SESSION_COOKIE not in browser_like.cookies


def test_upload_without_csrf_token_is_refused(browser_like: TestClient) -> None:
    log_in(browser_like)
    answer = browser_like.post("/letters/upload", files=[("files", ("a.png", b"x", "image/png"))])
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "csrf_failed"


def test_logout_ends_the_session(browser_like: TestClient) -> None:
    log_in(browser_like)
    token = page_csrf(browser_like)
    answer = browser_like.post("/staff/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    browser_like.cookies.clear()
    assert browser_like.get("/letters/").status_code == 303


def test_logout_without_csrf_token_is_refused(browser_like: TestClient) -> None:
    log_in(browser_like)
    assert browser_like.post("/staff/logout", data={}).status_code == 403
    assert browser_like.get("/letters/").status_code == 200


def test_disabled_user_loses_the_session_and_cannot_log_in(
    browser_like: TestClient, services: Services
) -> None:
    log_in(browser_like)
    accounts_for(services).disable("amina")
    assert browser_like.get("/letters/").status_code == 303
    assert log_in(browser_like).status_code == 401


def test_health_stays_open_without_login(browser_like: TestClient) -> None:
    assert browser_like.get("/healthz").status_code == 200


def test_users_command_adds_lists_and_disables(
    settings: Settings, intake_processes: IntakeProcesses
) -> None:
    env = env_for(settings)
    added = subprocess.run(
        [INTAKE, "users", "add", "karim", "--password-stdin"],
        input=b"long-password-42\n",
        env=env,
        timeout=60,
        capture_output=True,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    listed = intake_processes.run("users", "list", env=env)
    assert re.search(r"^karim\t.*\tactive$", listed.stdout(), re.MULTILINE), listed.describe()
    assert intake_processes.run("users", "disable", "karim", env=env).popen.returncode == 0
    assert "disabled" in intake_processes.run("users", "list", env=env).stdout()


def test_users_command_refuses_a_short_password(settings: Settings) -> None:
    added = subprocess.run(
        [INTAKE, "users", "add", "karim", "--password-stdin"],
        input=b"short\n",
        env=env_for(settings),
        timeout=60,
        capture_output=True,
        check=False,
    )
    assert added.returncode == 65
    assert b"too short" in added.stderr


def test_password_is_stored_only_as_a_scrypt_hash(services: Services) -> None:
    with reading(services.store.engine) as session:
        stored = session.scalar(select(StaffUserRow.password_hash))
    assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored
