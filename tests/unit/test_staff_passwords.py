"""Staff passwords: scrypt hashes that verify, resist guessing, and refuse short passwords."""

import pytest

from gateway.staff.web import _safe_next
from gateway.store.passwords import DUMMY_HASH, WeakPassword, hash_password, verify_password


def test_password_verifies_against_its_hash() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$")
    assert verify_password("correct horse battery", stored)


def test_wrong_password_does_not_verify() -> None:
    assert not verify_password("wrong horse battery", hash_password("correct horse battery"))


def test_same_password_gets_a_different_salt_each_time() -> None:
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


def test_short_password_is_refused() -> None:
    with pytest.raises(WeakPassword):
        hash_password("short")


def test_dummy_hash_verifies_nothing_but_costs_the_same() -> None:
    assert not verify_password("anything at all", DUMMY_HASH)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_login_never_redirects_off_site(target: str) -> None:
    assert _safe_next(target) == "/letters/"


def test_login_returns_to_the_page_asked_for() -> None:
    assert _safe_next("/letters/?lang=ar") == "/letters/?lang=ar"
