"""CSRF tokens of the public form: signed, bound to the browser's cookie, short-lived."""

from __future__ import annotations

from channels.webform.guard import FormGuard

GUARD = FormGuard.from_secret("a fixed secret for tests", max_age=3600)
NOW = 1_800_000_000.0


def test_a_token_issued_for_a_cookie_is_accepted_with_that_cookie() -> None:
    nonce = GUARD.new_nonce()
    assert GUARD.check(GUARD.issue(nonce, NOW), nonce, NOW + 10) == nonce


def test_a_token_is_refused_with_another_browsers_cookie() -> None:
    token = GUARD.issue(GUARD.new_nonce(), NOW)
    assert GUARD.check(token, GUARD.new_nonce(), NOW) is None


def test_a_token_is_refused_without_a_cookie() -> None:
    nonce = GUARD.new_nonce()
    assert GUARD.check(GUARD.issue(nonce, NOW), None, NOW) is None


def test_an_expired_token_is_refused() -> None:
    nonce = GUARD.new_nonce()
    assert GUARD.check(GUARD.issue(nonce, NOW), nonce, NOW + 3601) is None


def test_a_tampered_token_is_refused() -> None:
    nonce = GUARD.new_nonce()
    issued, _, mac = GUARD.issue(nonce, NOW).split(".")
    forged = f"{int(issued) + 3000}.{nonce}.{mac}"
    assert GUARD.check(forged, nonce, NOW + 3500) is None


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = FormGuard.from_secret("another secret", max_age=3600)
    nonce = GUARD.new_nonce()
    assert GUARD.check(other.issue(nonce, NOW), nonce, NOW) is None


def test_client_keys_do_not_reveal_the_address() -> None:
    key = GUARD.client_key("196.200.10.20")
    assert "196" not in key
    assert key == GUARD.client_key("196.200.10.20")
