"""Delivery status notifications (RFC 3464) of our acknowledgements, and their VERP addresses.

The reports are written as receiving servers write them (``tests/peers/bounces``)
and read with the stdlib's parser: a failed recipient, its status code, the
Message-ID of the returned message (whole or headers only), and whom the
report is addressed to; delay warnings and other reports are not bounces.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from normalizer.email.dsn import parse_dsn, verp_address, verp_token
from tests.peers.bounces import dsn

ACK_ID = "0f9c2b4e-7d1a-4c8e-9a53-2d6e1b7f4a10"
VERP = f"bounces+{ACK_ID}@intake.cashplus.ma"
OURS = "<ack.CP-7K3M-9QXA.0123456789abcdef@intake.cashplus.ma>"


@pytest.mark.parametrize("returned", ["headers", "message"])
def test_a_failed_recipient_is_a_bounce_of_the_returned_message(returned: str) -> None:
    raw = dsn(to=VERP, original_message_id=OURS, returned=returned)

    bounce = parse_dsn(raw)

    assert bounce is not None and bounce.failed
    assert bounce.status == "5.1.1"
    assert bounce.original_message_id == OURS
    assert bounce.reporting_mta == "mx.example.org"
    assert bounce.addressed_to == (VERP,)
    [recipient] = bounce.recipients
    assert recipient.final_recipient == "client@example.org"
    assert recipient.diagnostic is not None and recipient.diagnostic.startswith("550 5.1.1")


def test_a_delay_warning_is_a_report_but_not_a_failure() -> None:
    bounce = parse_dsn(dsn(to=VERP, original_message_id=OURS, action="delayed", status="4.4.1"))

    assert bounce is not None
    assert not bounce.failed and bounce.status is None
    assert bounce.recipients[0].action == "delayed"


def test_a_read_receipt_is_not_a_delivery_report() -> None:
    raw = dsn(to=VERP, original_message_id=OURS, report_type="disposition-notification")
    assert parse_dsn(raw) is None


def test_a_plain_mail_is_not_a_delivery_report() -> None:
    mail = EmailMessage()
    mail["From"] = "client@example.org"
    mail["To"] = "contact@cashplus.ma"
    mail["Subject"] = "Undelivered Mail Returned to Sender"  # a subject alone proves nothing
    mail.set_content("Bonjour, mon transfert n'est pas arrivé.")
    assert parse_dsn(mail.as_bytes()) is None


def test_a_verp_address_carries_the_acknowledgement_and_gives_it_back() -> None:
    address = verp_address("bounces@intake.cashplus.ma", ACK_ID)

    assert address == VERP
    assert verp_token("bounces@intake.cashplus.ma", address) == ACK_ID
    assert verp_token("bounces@intake.cashplus.ma", f"<{address.upper()}>") == ACK_ID


@pytest.mark.parametrize(
    "address",
    [
        "bounces@intake.cashplus.ma",  # no token
        f"bounces+{ACK_ID}@example.org",  # another domain
        f"other+{ACK_ID}@intake.cashplus.ma",  # another local part
        "bounces+../../etc@intake.cashplus.ma",  # not a token of ours
        "contact@cashplus.ma",
    ],
)
def test_other_addresses_name_no_acknowledgement(address: str) -> None:
    assert verp_token("bounces@intake.cashplus.ma", address) is None
