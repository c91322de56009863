"""Security headers and the content security policy, on the wire and in a real browser.

Every answer carries ``nosniff``, a referrer policy, a permissions policy and
a framing refusal; every HTML page carries one strict content security
policy (no inline script or style anywhere). The browser half loads the
public form, the staff login, the mailroom upload page and the operator page
in Debian's chromium under that policy, uses what their scripts do, and
fails on any policy violation the browser reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.http.security import PAGE_POLICY
from gateway.lib.services import build_services
from tests.peers import scans
from tests.peers.processes import IntakeProcesses, env_for, free_port
from tests.peers.staff import log_in as staff_log_in
from tests.peers.staff import serve_with_staff

PAGES = ("/", "/ar/", "/en/", "/es/", "/staff/login")
ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
PASSWORD = "csp-check-2026-casa"


def client_for(settings: Settings) -> Iterator[TestClient]:
    services = build_services(settings)
    with TestClient(create_app(services), follow_redirects=False) as client:
        yield client
    services.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    yield from client_for(settings)


@pytest.fixture
def https_client(settings: Settings) -> Iterator[TestClient]:
    yield from client_for(
        settings.model_copy(update={"public_base_url": "https://intake.cashplus.ma"})
    )


# -- on the wire -----------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_strict_content_security_policy(
    client: TestClient, path: str
) -> None:
    answer = client.get(path)

    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == PAGE_POLICY
    for name, value in ALWAYS.items():
        assert answer.headers[name] == value, name
    assert "camera=()" in answer.headers["permissions-policy"]


def test_the_page_policy_allows_no_inline_code_and_no_framing() -> None:
    assert "unsafe-inline" not in PAGE_POLICY and "unsafe-eval" not in PAGE_POLICY
    assert "frame-ancestors 'none'" in PAGE_POLICY
    assert "script-src 'self'" in PAGE_POLICY


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/v1/complaints/CP-AAAA-AAAA"])
def test_json_answers_carry_the_headers_but_no_page_policy(client: TestClient, path: str) -> None:
    answer = client.get(path)

    assert answer.headers["content-type"].startswith("application/json")
    assert "content-security-policy" not in answer.headers
    for name, value in ALWAYS.items():
        assert answer.headers[name] == value, name


def test_a_refusal_before_the_app_reads_the_body_carries_the_headers(client: TestClient) -> None:
    answer = client.post(
        "/v1/complaints",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 413
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_api_documentation_is_under_the_strict_policy_and_loads_nothing_from_elsewhere(
    client: TestClient,
) -> None:
    answer = client.get("/docs")

    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == PAGE_POLICY
    assert "http" not in answer.text  # every script and style is ours, by path
    assert "<script>" not in answer.text and "<style" not in answer.text
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text
    assert client.get("/docs/static/index.html").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_api_documentation_can_be_turned_off(settings: Settings) -> None:
    for client in client_for(settings.model_copy(update={"api_docs": False})):
        assert client.get("/docs").status_code == 404
        assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 404
        assert client.get("/openapi.json").status_code == 200


def test_hsts_is_sent_only_when_the_public_url_is_https(
    client: TestClient, https_client: TestClient
) -> None:
    assert "strict-transport-security" not in client.get("/healthz").headers
    assert https_client.get("/").headers["strict-transport-security"].startswith("max-age=")


# -- in a real browser -----------------------------------------------------------
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture
def site(settings: Settings, intake_processes: IntakeProcesses) -> Iterator[str]:
    port = free_port()
    env = env_for(settings, http_port=port, max_request_bytes=60 * 1024 * 1024)
    yield serve_with_staff(intake_processes, env, port, ("amina", PASSWORD), "web")


@pytest.fixture
def watched(page: Any) -> Any:
    """The test's page, recording every policy violation and the console's complaints."""
    page.console_errors = []
    page.on(
        "console",
        lambda message: (
            page.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    return page


def violations(page: Any) -> list[str]:
    reported = list(page.evaluate("window.__csp"))
    console = [text for text in page.console_errors if "Content Security Policy" in text]
    return reported + console


def log_in(page: Any, base: str, path: str) -> None:
    staff_log_in(page, base, path, ("amina", PASSWORD))


def test_public_form_runs_its_script_under_the_policy(watched: Any, site: str) -> None:
    posts: list[str] = []
    watched.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    watched.goto(site + "/")

    watched.click("button[type=submit]")  # empty: the script shows the summary, no round trip

    watched.wait_for_selector("#error-summary:not([hidden])")
    assert posts == []
    assert violations(watched) == []


def test_arabic_form_renders_under_the_policy(watched: Any, site: str) -> None:
    watched.goto(site + "/ar/")

    assert watched.locator("html").get_attribute("dir") == "rtl"
    assert violations(watched) == []


def test_staff_login_takes_its_style_from_a_file_under_the_policy(watched: Any, site: str) -> None:
    watched.goto(site + "/staff/login")

    header = watched.eval_on_selector("header", "h => getComputedStyle(h).backgroundColor")
    assert header == "rgb(11, 79, 138)"
    assert violations(watched) == []


def test_mailroom_upload_page_script_works_under_the_policy(
    watched: Any, site: str, tmp_path: Path
) -> None:
    scan = tmp_path / "lettre.png"
    scan.write_bytes(scans.encode(scans.render_page(("Réclamation",), size=(800, 600)), "png"))
    log_in(watched, site, "/letters/")

    watched.set_input_files("#files", str(scan))
    watched.wait_for_selector("#pending li")
    watched.click("#send")

    watched.wait_for_selector("#results .letter .reference", timeout=60_000)
    assert violations(watched) == []


def test_api_documentation_renders_under_the_policy(watched: Any, site: str) -> None:
    requests: list[str] = []
    watched.on("request", lambda request: requests.append(request.url))
    watched.goto(site + "/docs")

    watched.wait_for_selector(".opblock-summary-path", timeout=30_000)
    assert violations(watched) == []
    assert all(url.startswith(site) for url in requests), requests


def test_operator_page_renders_under_the_policy(watched: Any, site: str) -> None:
    log_in(watched, site, "/ops/")

    assert watched.title()
    assert violations(watched) == []
