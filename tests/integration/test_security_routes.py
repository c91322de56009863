"""Every route of the app refuses a request without credentials, unless it is public on purpose.

The routes are enumerated from the app itself, so a route added later is
checked without anyone remembering to list it: it is either in ``PUBLIC``
(with the reason it may be), signed by Twilio instead (``/twilio/``), or it
must refuse an anonymous request (401, 403, or a redirect to the login page).

Public on purpose:
- the complaint form and its language variants (``GET``) and their posts
  (anyone may complain; a post needs the CSRF token of a form we served);
- health, readiness and metrics (operators and probes; nothing personal);
- the OpenAPI document and its rendering (``/openapi.json``, ``/docs`` and
  its static files): the API contract is public for partners, it holds no data;
- the pages' own static files, and the staff login form;
- the customer's status pages (``/{lang}/status/``): the page is a form; the
  lookup (``POST``) needs the form's CSRF token, a reference and the contact
  point used, and is rate-limited;
- the phone line's recorded prompts (``/twilio/prompts/...``): Twilio fetches
  them for ``<Play>``; the same sentence for every caller, nothing personal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.lib.http.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    accounts_for,
    require_staff,
    roles_for,
)
from gateway.lib.services import build_services

FORM_PAGES = ("/", "/fr/", "/ar/", "/en/", "/es/")
STATUS_PAGES = tuple(f"{path}status/" for path in FORM_PAGES if path != "/")
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {("GET", path) for path in FORM_PAGES + STATUS_PAGES}
    | {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/static/{name}"),
        ("GET", "/assets/webform/{name}"),
        ("GET", "/letters/static/{name}"),
        ("GET", "/staff/static/{name}"),
        ("GET", "/twilio/prompts/{tag}/{name}.mp3"),
        ("GET", "/ops/static/ops.css"),
        ("GET", "/staff/login"),
    }
)
# Public, but refused without the CSRF token of a page we served.
CSRF_ONLY: frozenset[tuple[str, str]] = frozenset(
    {("POST", path) for path in FORM_PAGES + STATUS_PAGES if path != "/"}
    | {("POST", "/staff/login")}
)
SIGNED_PREFIX = "/twilio/"
LOGIN_REDIRECT = re.compile(r"^/staff/login\?next=")


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, including those of included routers."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        found = list(contexts()) if contexts is not None else [route]
        for item in found:
            for method in sorted(getattr(item, "methods", None) or ()):
                if method != "HEAD":
                    yield method, str(getattr(item, "path", ""))


@pytest.fixture(scope="module")
def routes_and_client(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list, TestClient]]:
    from config.settings import load_settings

    settings = load_settings(data_dir=tmp_path_factory.mktemp("routes") / "var")
    services = build_services(settings)
    app = create_app(services)
    with TestClient(app, follow_redirects=False) as client:
        yield sorted(set(app_routes(app))), client
    services.close()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "probe", path)


def anonymous(client: TestClient, method: str, path: str, html: bool = False):  # type: ignore[no-untyped-def]
    headers = {"Accept": "text/html"} if html else {"Accept": "application/json"}
    return client.request(method, concrete(path), headers=headers)


def protected(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        route
        for route in routes
        if route not in PUBLIC and route not in CSRF_ONLY and not route[1].startswith(SIGNED_PREFIX)
    ]


def test_the_app_has_the_routes_this_test_knows_about(routes_and_client) -> None:
    routes, _client = routes_and_client
    assert ("POST", "/v1/complaints") in routes
    assert ("GET", "/letters/") in routes
    assert len(protected(routes)) >= 10


def test_every_non_public_route_refuses_a_request_without_credentials(routes_and_client) -> None:
    routes, client = routes_and_client
    let_through = []
    for method, path in protected(routes):
        answer = anonymous(client, method, path)
        if answer.status_code not in (401, 403):
            let_through.append(f"{method} {path} -> {answer.status_code}")
    assert let_through == []


def test_a_browser_without_a_session_is_sent_to_the_login_page(routes_and_client) -> None:
    routes, client = routes_and_client
    pages = [(m, p) for m, p in protected(routes) if m == "GET" and not p.startswith("/v1/")]
    assert pages
    for method, path in pages:
        answer = anonymous(client, method, path, html=True)
        assert answer.status_code == 303, f"{method} {path}"
        assert LOGIN_REDIRECT.match(answer.headers["location"]), answer.headers["location"]


def test_every_twilio_webhook_refuses_an_unsigned_request(routes_and_client) -> None:
    routes, client = routes_and_client
    webhooks = [(m, p) for m, p in routes if p.startswith(SIGNED_PREFIX) and (m, p) not in PUBLIC]
    assert len(webhooks) >= 5
    for method, path in webhooks:
        answer = client.request(method, path, data={"CallSid": "CA" + "0" * 32})
        assert answer.status_code == 403, f"{method} {path}"
        assert answer.json()["error"]["code"] == "invalid_signature"


def test_public_form_posts_refuse_a_request_without_a_served_token(routes_and_client) -> None:
    _routes, client = routes_and_client
    for _method, path in sorted(CSRF_ONLY):
        fields = {"name": "x", "password": "x"} if path.startswith("/staff") else {"text": "x"}
        answer = client.post(path, data=fields)
        assert answer.status_code == 403, path


def test_a_wrong_api_key_is_refused_like_no_key(routes_and_client) -> None:
    _routes, client = routes_and_client
    answer = client.get(
        "/v1/acks/letters", headers={"Authorization": "Bearer cp_live_not-a-real-key"}
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_public_routes_answer_without_credentials(routes_and_client) -> None:
    _routes, client = routes_and_client
    for path in ("/healthz", "/metrics", "/openapi.json", "/", "/staff/login"):
        assert client.get(path).status_code == 200, path


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependency_calls(sub)


def staff_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route that needs a staff session (``require_staff``)."""
    found = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for item in list(contexts()) if contexts is not None else [route]:
            dependant = getattr(item, "dependant", None)
            if dependant is not None and require_staff in set(_dependency_calls(dependant)):
                for method in sorted(getattr(item, "methods", None) or ()):
                    if method != "HEAD":
                        found.append((method, str(getattr(item, "path", ""))))
    return sorted(found)


def test_every_staff_route_has_a_role_rule_and_refuses_the_other_roles(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Review S6: every route behind the staff login says which roles may use it.

    A mailroom and an operator session each call every staff route (with
    their CSRF token); a route their role is not in answers 403 before doing
    anything, a route it is in does not.
    """
    from config.settings import load_settings

    settings = load_settings(data_dir=tmp_path_factory.mktemp("roles") / "var")
    services = build_services(settings)
    try:
        app = create_app(services)
        routes = staff_routes(app)
        assert ("POST", "/ops/dead-letters/replay") in routes
        assert ("POST", "/letters/upload") in routes
        assert ("POST", "/staff/password") in routes
        assert [route for route in routes if roles_for(route[1]) is None] == []
        accounts = accounts_for(services)
        for role in ("mailroom", "operator"):
            user = accounts.add(f"user-{role}", "courrier-2026-casa", role)
            token, session = accounts.open_session(user)
            with TestClient(app, follow_redirects=False) as client:
                client.cookies.set(SESSION_COOKIE, token)
                for method, path in routes:
                    allowed = role in (roles_for(path) or ())
                    if method == "POST" and path == "/staff/logout":
                        continue  # would end the session the loop uses
                    answer = client.request(
                        method,
                        concrete(path),
                        headers={"Accept": "application/json", CSRF_HEADER: session.csrf_token},
                    )
                    assert (answer.status_code == 403) != allowed, (role, method, path, answer.text)
    finally:
        services.close()
