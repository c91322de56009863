"""Customer keys: one key per contact point however it is written, and none without the secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.store.customers import resolve_secret
from normalizer.contact import build_customer
from normalizer.contract import CUSTOMER_KEY_PATTERN, Customer
from normalizer.customer import contact_keys, email_point, phone_point, point_key

pytestmark = pytest.mark.unit

SECRET = b"test-secret-of-customer-keys"


def _phone_key(raw: str, secret: bytes = SECRET) -> str:
    point = phone_point(raw)
    assert point is not None
    return point_key(point, secret)


def _email_key(raw: str, secret: bytes = SECRET) -> str:
    point = email_point(raw)
    assert point is not None
    return point_key(point, secret)


@pytest.mark.parametrize("written", ["+212612345678", "00212 6 12 34 56 78", "06 12 34 56 78"])
def test_every_way_of_writing_a_moroccan_number_gives_one_key(written: str) -> None:
    assert _phone_key(written) == _phone_key("0612345678")


def test_an_email_address_is_keyed_in_lower_case() -> None:
    assert _email_key(" Ahmed.Benali@Example.MA ") == _email_key("ahmed.benali@example.ma")


def test_another_number_gets_another_key() -> None:
    assert _phone_key("0612345678") != _phone_key("0612345679")


def test_the_same_secret_gives_the_same_key_and_another_secret_another() -> None:
    assert _phone_key("0612345678", b"one secret") == _phone_key("0612345678", b"one secret")
    assert _phone_key("0612345678", b"one secret") != _phone_key("0612345678", b"two secret")


def test_a_key_is_compact_and_names_no_one() -> None:
    key = _phone_key("0612345678")
    assert re.fullmatch(CUSTOMER_KEY_PATTERN, key)
    assert "612345678" not in key
    assert "0612345678" not in key.removeprefix("cus_")


def test_the_phone_comes_first_then_the_email() -> None:
    customer = build_customer(phone="0612345678", email="A@Example.ma")
    assert contact_keys(customer, SECRET) == [
        _phone_key("+212612345678"),
        _email_key("a@example.ma"),
    ]


def test_a_customer_without_phone_or_email_has_no_key() -> None:
    assert contact_keys(Customer(name="Ahmed", postal_address="Casablanca"), SECRET) == []


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        point_key("tel:+212612345678", b"")


def test_without_a_setting_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    first = resolve_secret("", tmp_path)
    assert len(first) >= 32
    assert resolve_secret("", tmp_path) == first
    assert (tmp_path / "customer-key.secret").stat().st_mode & 0o077 == 0
    assert resolve_secret("from the environment", tmp_path) == b"from the environment"
