"""Staff accounts under attack (review S6, S22, S17's token), over HTTP against ``intake web``.

One ``intake web`` per test, with three accounts made the way an operator
makes them (``intake staff add NAME --role ROLE``): a mailroom clerk, an
operator and an admin. Each test plays the attack the review describes and
checks what the gateway answers: roles refused (403), logins throttled
(429 with Retry-After, never by waiting), a login form token good once,
idle sessions ended, a password changed, every action in the audit trail,
notices on ``/ops/`` that a link cannot word, and a token-protected
``/metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import text, update

from config.settings import Settings
from gateway.lib.services import build_services
from gateway.store.db import alembic_config, create_store_engine, migrate, writing
from gateway.store.tables import StaffSessionRow
from tests.peers.processes import IntakeProcess, IntakeProcesses, env_for, free_port, wait_for_port
from tests.peers.staff import add_staff_user

PASSWORD = "courrier-2026-casa"
USERS = {"amina": "mailroom", "karim": "operator", "salma": "admin"}
METRICS_TOKEN = "metrics-token-for-prometheus-0042"


@dataclass
class Site:
    base: str
    process: IntakeProcess
    settings: Settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)


@pytest.fixture
def site(settings: Settings, intake_processes: IntakeProcesses) -> Iterator[Site]:
    port = free_port()
    env = env_for(
        settings,
        http_port=port,
        # Long locks: a test checks the answer, it never waits for one to end.
        staff_login_backoff_seconds=600,
        metrics_token=METRICS_TOKEN,
    )
    for name, role in USERS.items():
        add_staff_user(env, name, PASSWORD, role=role)
    process = intake_processes.start("web", env=env)
    wait_for_port(port, process, timeout=60)
    yield Site(f"http://127.0.0.1:{port}", process, settings)


def login_form(client: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text)
    assert found
    return found.group(1)


def log_in(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    token = login_form(client)
    return client.post(
        "/staff/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/staff/password"},
    )


def session_csrf(client: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/password").text)
    assert found, "not logged in"
    return found.group(1)


def logged_in(site: Site, name: str) -> tuple[httpx.Client, str]:
    client = site.client()
    assert log_in(client, name).status_code == 303
    return client, session_csrf(client)


# -- roles ----------------------------------------------------------------------


def test_a_mailroom_login_cannot_replay_dead_letters_or_quarantine(site: Site) -> None:
    client, csrf = logged_in(site, "amina")
    requeue = client.post(
        "/ops/dead-letters/replay", data={"csrf_token": csrf, "message_id": "*", "queue": ""}
    )
    assert requeue.status_code == 403
    assert requeue.json()["error"]["code"] == "forbidden"
    reprocess = client.post("/ops/quarantine/some-item/replay", data={"csrf_token": csrf})
    assert reprocess.status_code == 403
    assert client.get("/ops/", headers={"Accept": "text/html"}).status_code == 403
    # Their own pages still open.
    assert client.get("/letters/", headers={"Accept": "text/html"}).status_code == 200
    assert client.get("/letters/acks", headers={"Accept": "text/html"}).status_code == 200


def test_an_operator_works_on_ops_but_cannot_upload_letters(site: Site) -> None:
    client, csrf = logged_in(site, "karim")
    assert client.get("/ops/", headers={"Accept": "text/html"}).status_code == 200
    upload = client.post(
        "/letters/upload",
        headers={"X-CSRF-Token": csrf},
        files=[("files", ("a.png", b"\x89PNG\r\n\x1a\n", "image/png"))],
    )
    assert upload.status_code == 403
    requeue = client.post(
        "/ops/dead-letters/replay", data={"csrf_token": csrf, "message_id": "*", "queue": ""}
    )
    assert requeue.status_code == 303


def test_an_admin_opens_every_page(site: Site) -> None:
    client, _csrf = logged_in(site, "salma")
    for path in ("/ops/", "/letters/", "/letters/acks", "/staff/password"):
        assert client.get(path, headers={"Accept": "text/html"}).status_code == 200, path


# -- login throttling -------------------------------------------------------------


def test_password_guessing_is_throttled_and_a_trusted_browser_still_gets_in(
    site: Site,
) -> None:
    # The real user logged in from this browser before: it carries the trusted cookie.
    own_browser = site.client()
    assert log_in(own_browser, "amina").status_code == 303
    attacker = site.client()
    answers = [log_in(attacker, "amina", f"guess-{n:04d}-wrong").status_code for n in range(6)]
    assert answers == [401] * 6
    locked = log_in(attacker, "amina", "guess-0007-wrong")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    # Locked means locked: the right password from a stranger is refused unchecked.
    assert log_in(site.client(), "amina").status_code == 429
    # The lock does not keep the real user out of their own browser.
    assert log_in(own_browser, "amina").status_code == 303
    # Another account on the same address is not locked by it.
    assert log_in(site.client(), "karim").status_code == 303


def test_one_address_guessing_many_names_is_throttled(site: Site) -> None:
    attacker = site.client()
    answers = [log_in(attacker, f"nobody{n}", "not-the-password").status_code for n in range(21)]
    assert answers == [401] * 21
    locked = log_in(attacker, "nobody-else", "not-the-password")
    assert locked.status_code == 429
    assert "retry-after" in locked.headers


def test_a_login_form_token_is_good_for_one_attempt(site: Site) -> None:
    client = site.client()
    token = login_form(client)
    fields = {"name": "amina", "password": "wrong-password-1", "csrf_token": token}
    assert client.post("/staff/login", data=fields).status_code == 401
    # The failure page set a fresh token cookie; replaying the old pair is refused.
    client.cookies.set("intake_login_csrf", token)
    again = client.post("/staff/login", data={**fields, "password": PASSWORD})
    assert again.status_code == 403
    assert "intake_staff" not in client.cookies


def test_logins_are_logged_with_name_and_masked_address_never_the_password(site: Site) -> None:
    secret_guess = "Sup3r-Secret-Guess-9931"
    log_in(site.client(), "amina", secret_guess)
    log_in(site.client(), "karim")
    site.process.signal(15)
    site.process.wait()
    output = site.process.stdout() + site.process.stderr()
    assert re.search(r"staff login failed for 'amina' from 127\.0\.0\.x", output), output[-3000:]
    assert re.search(r"staff login of 'karim' \(operator\) from 127\.0\.0\.x", output)
    assert secret_guess not in output
    assert PASSWORD not in output


# -- sessions and passwords -------------------------------------------------------


def test_an_idle_session_ends(site: Site) -> None:
    client, _csrf = logged_in(site, "amina")
    services = build_services(site.settings)
    try:
        with writing(services.store.engine) as session:
            session.execute(
                update(StaffSessionRow).values(
                    last_seen_at=datetime.now(UTC) - timedelta(minutes=31)
                )
            )
    finally:
        services.close()
    answer = client.get("/letters/", headers={"Accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/staff/login")


def test_a_member_changes_their_password(site: Site) -> None:
    client, csrf = logged_in(site, "amina")
    other, _ = logged_in(site, "amina")
    new = "nouveau-mot-de-passe-77"
    wrong = client.post(
        "/staff/password",
        data={"csrf_token": csrf, "current": "not-it-at-all", "new": new, "confirm": new},
    )
    assert wrong.status_code == 403
    changed = client.post(
        "/staff/password",
        data={"csrf_token": csrf, "current": PASSWORD, "new": new, "confirm": new},
    )
    assert changed.status_code == 200
    assert 'id="password-changed"' in changed.text
    # This session goes on, the other one ended; the old password no longer opens one.
    assert client.get("/letters/", headers={"Accept": "text/html"}).status_code == 200
    assert other.get("/letters/", headers={"Accept": "text/html"}).status_code == 303
    assert log_in(site.client(), "amina").status_code == 401
    assert log_in(site.client(), "amina", new).status_code == 303


# -- audit trail and notices ---------------------------------------------------------


def test_staff_actions_are_in_the_audit_trail_on_ops_and_in_the_shell(
    site: Site, intake_processes: IntakeProcesses
) -> None:
    mailroom, mailroom_csrf = logged_in(site, "amina")
    mailroom.post("/staff/logout", data={"csrf_token": mailroom_csrf})
    operator, csrf = logged_in(site, "karim")
    requeue = operator.post(
        "/ops/dead-letters/replay", data={"csrf_token": csrf, "message_id": "evt-x", "queue": ""}
    )
    assert requeue.status_code == 303
    page = operator.get("/ops/", headers={"Accept": "text/html"}).text
    rows = re.findall(r'<tr class="audit-entry">(.*?)</tr>', page, re.DOTALL)
    text = " ".join(rows)
    assert "dead_letter_requeue" in text and "karim" in text
    assert "logout" in text and "amina" in text
    assert "127.0.0.x" in text

    env = env_for(site.settings)
    listed = intake_processes.run("staff", "audit", "--since", "1h", env=env)
    lines = listed.stdout().splitlines()
    assert any("\tamina\tmailroom\tlogin\t" in line for line in lines), listed.describe()
    assert any("\tkarim\toperator\tdead_letter_requeue\t-:evt-x" in line for line in lines)
    changed = intake_processes.run("staff", "set-role", "amina", "operator", env=env)
    assert changed.popen.returncode == 0, changed.describe()
    after = intake_processes.run("staff", "audit", env=env).stdout()
    assert re.search(r"\tcli[^\t]*\tadmin\trole_changed\tamina\t-\tmailroom -> operator", after)


def test_a_crafted_notice_link_shows_no_text_of_its_own(site: Site) -> None:
    operator, _csrf = logged_in(site, "karim")
    bait = "Session expirée, reconnectez-vous sur https://cashplus-verif.example"
    for query in (
        {"notice": "dead_failed", "detail": bait},
        {"notice": "replayed", "detail": bait, "reference": bait},
        {"notice": "whatever", "detail": bait},
    ):
        page = operator.get("/ops/", params=query, headers={"Accept": "text/html"}).text
        assert "cashplus-verif" not in page
        assert 'id="notice"' not in page
    # A notice worded from another member's audit entry is not shown either.
    admin, admin_csrf = logged_in(site, "salma")
    failed = admin.post(
        "/ops/dead-letters/replay",
        data={"csrf_token": admin_csrf, "message_id": "no-such", "queue": "complaints.dead"},
    )
    location = failed.headers["location"]
    assert re.match(r"^/ops/\?notice=[a-z_]+&entry=\d+#dead$", location), location
    assert 'id="notice"' in admin.get(location, headers={"Accept": "text/html"}).text
    page = operator.get(location, headers={"Accept": "text/html"}).text
    assert 'id="notice"' not in page
    # An unknown entry or a code without one shows nothing.
    assert 'id="notice"' not in operator.get("/ops/?notice=refused").text
    assert 'id="notice"' not in operator.get("/ops/?notice=refused&entry=999999").text
    assert 'id="notice"' in operator.get("/ops/?notice=not_found").text


# -- /metrics behind a token -----------------------------------------------------------


def test_metrics_need_the_token_when_one_is_set(site: Site) -> None:
    client = site.client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "intake_" not in refused.text
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    served = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert served.status_code == 200
    assert "intake_outbox_pending" in served.text


# -- the migration ---------------------------------------------------------------------


def test_users_made_before_roles_become_admins_and_new_ones_mailroom(tmp_path: Path) -> None:
    """Migration 0012: existing accounts had every right, so they keep them (admin)."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        command.upgrade(alembic_config(engine), "0010")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO staff_users (id, name, password_hash, created_at) "
                    "VALUES ('u1', 'ancien', 'scrypt$x', '2026-11-26 10:00:00')"
                )
            )
        migrate(engine)
        with engine.begin() as connection:
            assert connection.scalar(text("SELECT role FROM staff_users")) == "admin"
            connection.execute(
                text(
                    "INSERT INTO staff_users (id, name, password_hash, created_at) "
                    "VALUES ('u2', 'nouveau', 'scrypt$x', '2026-12-15 10:00:00')"
                )
            )
            role = connection.scalar(text("SELECT role FROM staff_users WHERE id = 'u2'"))
        assert role == "mailroom"
    finally:
        engine.dispose()
