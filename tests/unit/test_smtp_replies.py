"""SMTP edge decisions that need no socket: who may deliver, to whom, and what we answer."""

from __future__ import annotations

import pytest

from channels.email.smtp import QUEUED, TEMPORARY_FAILURE, reply_for_error
from channels.email.smtp_policy import SmtpConfigError, SmtpPolicy, parse_networks
from config.settings import load_settings
from gateway.store import StoreUnavailable
from normalizer.email import EmailInternalError


def policy(recipients: str = "contact@cashplus.ma", networks: str = "") -> SmtpPolicy:
    return SmtpPolicy.from_settings(
        load_settings(smtp_recipients=recipients, smtp_allowed_networks=networks)
    )


@pytest.mark.parametrize(
    "address", ["contact@cashplus.ma", "Contact@CashPlus.MA", "CONTACT@cashplus.ma."]
)
def test_configured_address_is_accepted_whatever_its_case(address: str) -> None:
    assert policy().accepts_recipient(address)


def test_other_address_of_the_same_domain_is_refused_when_only_an_address_is_configured() -> None:
    assert not policy().accepts_recipient("director@cashplus.ma")


def test_configured_domain_accepts_every_address_in_it() -> None:
    assert policy("cashplus.ma").accepts_recipient("réclamations@cashplus.ma")


def test_subdomain_is_not_the_configured_domain() -> None:
    assert not policy("cashplus.ma").accepts_recipient("contact@evil.cashplus.ma.example")


def test_internationalized_domain_matches_its_ascii_form() -> None:
    assert policy("xn--mgbh0fb.xn--mgbc0a9azcg").accepts_recipient("شكاية@مثال.المغرب")


def test_empty_network_list_lets_anyone_deliver() -> None:
    assert policy().allows_peer("203.0.113.9")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("10.1.2.3", True), ("::ffff:10.1.2.3", True), ("127.0.0.1", False), ("fe80::1%eth0", False)],
)
def test_networks_decide_who_may_deliver(host: str, allowed: bool) -> None:
    assert policy(networks="10.0.0.0/8").allows_peer(host) is allowed


def test_a_bad_network_names_its_setting() -> None:
    with pytest.raises(SmtpConfigError, match="INTAKE_SMTP_ALLOWED_NETWORKS"):
        parse_networks("10.0.0.0/8, intranet")


def test_the_edge_reply_gives_the_capture_s_reference() -> None:
    # The edge parses nothing (a malformed mail is quarantined by the runner,
    # after this reply): one accepting reply, with the reference.
    assert QUEUED.format(reference="CP-ABCD-EFGH") == "250 2.0.0 Queued as CP-ABCD-EFGH"


@pytest.mark.parametrize(
    "error",
    [StoreUnavailable("OperationalError"), EmailInternalError("magic"), KeyError("secret")],
)
def test_every_failure_of_ours_is_the_same_temporary_reply(error: Exception) -> None:
    assert reply_for_error(error) == TEMPORARY_FAILURE
    assert TEMPORARY_FAILURE.startswith("451 4.3.0 ")
