"""Complaints forwarded by Bank Al-Maghrib or the CMMB are recognised by sender."""

from __future__ import annotations

import pytest

from normalizer.email import classify_origin

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "origin"),
    [
        ("reclamations@bkam.ma", "bank_al_maghrib"),
        ("Agent@Service.BKAM.MA", "bank_al_maghrib"),
        ("mediation@cmmb.ma", "cmmb"),
        ("client@example.ma", "customer"),
        ("someone@notbkam.ma", "customer"),
        (None, "customer"),
        ("not an address", "customer"),
    ],
)
def test_default_rules(address, origin):
    assert classify_origin(address) == origin


def test_configured_exact_address_and_idn_domain():
    rules = {"cmmb": ["relais@example.org"], "bank_al_maghrib": ["xn--mgbh0fb.example"]}
    assert classify_origin("RELAIS@example.org", rules) == "cmmb"
    assert classify_origin("x@مثال.example", rules) == "bank_al_maghrib"
    assert classify_origin("reclamations@bkam.ma", rules) == "customer"
