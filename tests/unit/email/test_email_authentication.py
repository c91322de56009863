"""S12: origin bank_al_maghrib / cmmb only from authenticated mail.

A mail saying ``From: reclamations@bkam.ma`` is the regulator's only when
our own MX vouches for it (``Authentication-Results`` of a trusted
authserv-id, topmost) or when the gateway verified a DKIM signature aligned
with From. DKIM keys are made by the test and DNS is answered by the test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from normalizer.email import AuthPolicy, parse_email
from tests.peers.mail_auth import dkim_key, dns_answering, dns_down, key_name, sign

pytestmark = pytest.mark.unit

MX = "mx.cashplus.ma"
TRUST_MX = AuthPolicy.from_values(MX, verify_dkim=False, dns_timeout=1)


def with_headers(raw: bytes, *headers: str) -> bytes:
    return b"".join(f"{line}\r\n".encode() for line in headers) + raw


def dkim_policy(
    dnsfunc: Callable[..., bytes | None] | None = None, trusted: str = ""
) -> AuthPolicy:
    records = {key_name("bkam.ma"): dkim_key().record}
    return AuthPolicy.from_values(
        trusted, verify_dkim=True, dns_timeout=1, dnsfunc=dnsfunc or dns_answering(records)
    )


@pytest.fixture
def spoof(eml: Callable[[str], bytes]) -> bytes:
    """The Bank Al-Maghrib forward as anyone can write it: From says bkam.ma, nothing proves it."""
    return eml("forward_bank_al_maghrib.eml")


def test_an_unauthenticated_mail_from_bkam_is_a_customers_with_the_claim_kept(spoof: bytes) -> None:
    parsed = parse_email(spoof)
    assert parsed.origin == "customer"
    assert parsed.claimed_origin == "bank_al_maghrib"
    assert parsed.authentication.as_details() == {"result": "none", "method": None, "domain": None}


def test_dmarc_pass_from_our_trusted_mx_makes_it_the_regulators(spoof: bytes) -> None:
    raw = with_headers(
        spoof,
        f"Authentication-Results: {MX}; dkim=pass header.d=bkam.ma; "
        "dmarc=pass (p=reject) header.from=bkam.ma",
    )
    parsed = parse_email(raw, auth_policy=TRUST_MX)
    assert parsed.origin == "bank_al_maghrib"
    assert parsed.authentication.as_details() == {
        "result": "pass",
        "method": "authentication-results",
        "domain": "bkam.ma",
    }


def test_dkim_pass_in_trusted_results_needs_a_signer_aligned_with_from(spoof: bytes) -> None:
    aligned = with_headers(spoof, f"Authentication-Results: {MX}; dkim=pass header.d=mail.bkam.ma")
    other = with_headers(spoof, f"Authentication-Results: {MX}; dkim=pass header.d=evil.example")
    assert parse_email(aligned, auth_policy=TRUST_MX).origin == "bank_al_maghrib"
    assert parse_email(other, auth_policy=TRUST_MX).origin == "customer"


def test_results_are_ignored_unless_their_authserv_id_is_trusted(spoof: bytes) -> None:
    raw = with_headers(
        spoof, "Authentication-Results: mx.evil.example; dmarc=pass header.from=bkam.ma"
    )
    assert parse_email(raw, auth_policy=TRUST_MX).authentication.result == "none"
    # Nothing is trusted by default (INTAKE_TRUSTED_AUTHSERV_IDS empty).
    ours = with_headers(spoof, f"Authentication-Results: {MX}; dmarc=pass header.from=bkam.ma")
    assert parse_email(ours).origin == "customer"


def test_a_senders_own_results_below_ours_do_not_count(spoof: bytes) -> None:
    # The sender wrote a "pass" under our MX's name; our MX, on top, found a failure.
    raw = with_headers(
        spoof,
        f"Authentication-Results: {MX}; dkim=fail header.d=bkam.ma; dmarc=fail header.from=bkam.ma",
        "Received: from attacker.example by mx.cashplus.ma",
        f"Authentication-Results: {MX}; dkim=pass header.d=bkam.ma; dmarc=pass header.from=bkam.ma",
    )
    parsed = parse_email(raw, auth_policy=TRUST_MX)
    assert parsed.origin == "customer"
    assert parsed.authentication.as_details() == {
        "result": "fail",
        "method": "authentication-results",
        "domain": None,
    }


def test_trusted_results_below_an_untrusted_one_do_not_count(spoof: bytes) -> None:
    raw = with_headers(
        spoof,
        "Authentication-Results: relay.example; none",
        f"Authentication-Results: {MX}; dmarc=pass header.from=bkam.ma",
    )
    assert parse_email(raw, auth_policy=TRUST_MX).origin == "customer"


TRUST_TWO = AuthPolicy.from_values(f"{MX}, mx2.cashplus.ma", verify_dkim=False, dns_timeout=1)


def test_only_the_topmost_block_of_one_trusted_authserv_id_is_read(spoof: bytes) -> None:
    # Our MX (topmost) found nothing; the sender wrote a "pass" under our other trusted id.
    raw = with_headers(
        spoof,
        f"Authentication-Results: {MX}; dkim=none; dmarc=none header.from=bkam.ma",
        "Authentication-Results: mx2.cashplus.ma; dmarc=pass header.from=bkam.ma",
    )
    parsed = parse_email(raw, auth_policy=TRUST_TWO)
    assert parsed.origin == "customer"
    assert parsed.authentication.result == "none"
    # Below a block of our MX's own headers too; and our MX's id again below that is not read.
    forged_first = with_headers(
        spoof,
        f"Authentication-Results: {MX}; dmarc=none header.from=bkam.ma",
        f"Authentication-Results: {MX}; dkim=none",
        "Authentication-Results: mx2.cashplus.ma; dkim=pass header.d=bkam.ma",
        f"Authentication-Results: {MX}; dmarc=pass header.from=bkam.ma",
    )
    assert parse_email(forged_first, auth_policy=TRUST_TWO).authentication.result == "none"


def test_only_the_topmost_header_counts_even_below_it_with_the_same_authserv_id(
    spoof: bytes,
) -> None:
    # A forged header repeating our MX's id, just under the one our MX wrote.
    raw = with_headers(
        spoof,
        "Received: from relay.example by mx.cashplus.ma",
        f"Authentication-Results: {MX}; dkim=none",
        f"Authentication-Results: {MX}; dmarc=pass header.from=bkam.ma",
    )
    parsed = parse_email(raw, auth_policy=TRUST_TWO)
    assert parsed.origin == "customer"
    assert parsed.authentication.as_details()["result"] != "pass"
    # The second trusted id on top is read just the same, alone.
    second = with_headers(
        spoof, "Authentication-Results: mx2.cashplus.ma; dmarc=pass header.from=bkam.ma"
    )
    assert parse_email(second, auth_policy=TRUST_TWO).origin == "bank_al_maghrib"


def test_results_are_ignored_when_the_way_the_mail_came_does_not_vouch_for_them(
    spoof: bytes,
) -> None:
    """A public SMTP receiver's peer could be anyone: trusted ids or not, the header is ignored."""
    raw = with_headers(
        spoof,
        f"Authentication-Results: {MX}; dkim=pass header.d=bkam.ma; dmarc=pass header.from=bkam.ma",
    )
    untrusting = AuthPolicy.from_values(
        MX, verify_dkim=False, dns_timeout=1, trust_authentication_results=False
    )
    parsed = parse_email(raw, auth_policy=untrusting)
    assert parsed.origin == "customer"
    assert parsed.claimed_origin == "bank_al_maghrib"
    assert parsed.authentication.as_details() == {"result": "none", "method": None, "domain": None}
    # A reported failure is ignored too: the header means nothing from such a peer.
    failed = with_headers(spoof, f"Authentication-Results: {MX}; dmarc=fail header.from=bkam.ma")
    assert parse_email(failed, auth_policy=untrusting).authentication.result == "none"


def test_dkim_verified_here_still_counts_when_results_are_not_believed(spoof: bytes) -> None:
    records = {key_name("bkam.ma"): dkim_key().record}
    policy = AuthPolicy.from_values(
        MX,
        verify_dkim=True,
        dns_timeout=1,
        dnsfunc=dns_answering(records),
        trust_authentication_results=False,
    )
    raw = with_headers(
        sign(spoof, "bkam.ma"), f"Authentication-Results: {MX}; dmarc=fail header.from=bkam.ma"
    )
    parsed = parse_email(raw, auth_policy=policy)
    assert parsed.origin == "bank_al_maghrib"
    assert parsed.authentication.as_details() == {
        "result": "pass",
        "method": "dkim",
        "domain": "bkam.ma",
    }


def test_a_dkim_signature_verified_by_the_gateway_makes_it_the_regulators(spoof: bytes) -> None:
    parsed = parse_email(sign(spoof, "bkam.ma"), auth_policy=dkim_policy())
    assert parsed.origin == "bank_al_maghrib"
    assert parsed.authentication.as_details() == {
        "result": "pass",
        "method": "dkim",
        "domain": "bkam.ma",
    }


def test_a_signature_that_does_not_verify_is_a_failure(spoof: bytes) -> None:
    tampered = sign(spoof, "bkam.ma").replace(b"Veuillez trouver", b"Veuillez TROUVER")
    parsed = parse_email(tampered, auth_policy=dkim_policy())
    assert parsed.origin == "customer"
    assert parsed.authentication.as_details() == {
        "result": "fail",
        "method": "dkim",
        "domain": None,
    }


def test_a_valid_signature_of_another_domain_proves_nothing_about_from(spoof: bytes) -> None:
    records = {key_name("evil.example"): dkim_key().record}
    policy = dkim_policy(dns_answering(records))
    parsed = parse_email(sign(spoof, "evil.example"), auth_policy=policy)
    assert parsed.origin == "customer"
    assert parsed.authentication.result == "none"


def test_a_dns_failure_is_no_verdict_never_an_error(spoof: bytes) -> None:
    parsed = parse_email(sign(spoof, "bkam.ma"), auth_policy=dkim_policy(dns_down))
    assert parsed.origin == "customer"
    assert parsed.authentication.result == "none"
    assert parsed.body  # the mail is read all the same


def test_a_key_signed_by_someone_else_fails(spoof: bytes) -> None:
    forged = sign(spoof, "bkam.ma", dkim_key("attacker"))
    parsed = parse_email(forged, auth_policy=dkim_policy())
    assert parsed.authentication.result == "fail"
    assert parsed.origin == "customer"


def test_an_ordinary_customer_gets_a_verdict_too(eml: Callable[[str], bytes]) -> None:
    raw = with_headers(
        eml("fr_signature_quote.eml"),
        f"Authentication-Results: {MX}; dmarc=pass header.from=example.ma",
    )
    parsed = parse_email(raw, auth_policy=TRUST_MX)
    assert parsed.origin == "customer"
    assert parsed.authentication.as_details() == {
        "result": "pass",
        "method": "authentication-results",
        "domain": "example.ma",
    }


def test_every_email_complaint_draft_carries_the_verdict(spoof: bytes, eml) -> None:
    """SMTP, IMAP, imports and replays all build their draft here (the acks read it)."""
    from datetime import UTC, datetime

    from channels.email.intake import build_draft

    spoofed = build_draft(parse_email(spoof), datetime.now(UTC))
    ordinary = build_draft(parse_email(eml("fr_signature_quote.eml")), datetime.now(UTC))
    assert spoofed.details == {
        "authentication": {"result": "none", "method": None, "domain": None},
        "claimed_origin": "bank_al_maghrib",
    }
    assert ordinary.details == {
        "authentication": {"result": "none", "method": None, "domain": None}
    }


@pytest.mark.parametrize(
    "value",
    [
        f"{MX}; dkim=pass header.d=(((",
        f"{MX}; ; ; =pass",
        f"{MX} \x00; dmarc=pass header.from=bkam.ma",
        "",
        ";" * 5000,
    ],
)
def test_hostile_results_headers_leave_the_mail_unauthenticated_never_an_error(
    spoof: bytes, value: str
) -> None:
    raw = with_headers(spoof, f"Authentication-Results: {value}")
    parsed = parse_email(raw, auth_policy=dkim_policy(trusted=MX))
    assert parsed.origin == "customer"
    assert parsed.authentication.result in ("none", "fail")


def test_only_mail_over_smtp_from_an_unvouched_peer_loses_its_results() -> None:
    """IMAP (the provider adds them) and imports keep them; SMTP needs the receiver's word."""
    from datetime import UTC, datetime

    from channels.email.intake import MailArrival
    from channels.email.smtp_policy import SmtpPolicy, parse_networks

    def arrival(ids: dict, trust: bool | None = None) -> MailArrival:
        return MailArrival(b"", datetime.now(UTC), ids, trust_authentication_results=trust)

    assert arrival({"imap_uid": 7, "imap_folder": "INBOX"}).trusts_authentication_results
    assert arrival({"import_path": "/backlog.mbox"}).trusts_authentication_results
    assert not arrival({"smtp_peer": "203.0.113.9"}).trusts_authentication_results
    assert arrival({"smtp_peer": "10.0.0.5"}, trust=True).trusts_authentication_results
    public = SmtpPolicy(frozenset(), frozenset(), ())
    relayed = SmtpPolicy(frozenset(), frozenset(), parse_networks("10.0.0.0/24"))
    assert not public.vouches_for("10.0.0.5")
    assert relayed.vouches_for("10.0.0.5")
    assert not relayed.vouches_for("203.0.113.9")
