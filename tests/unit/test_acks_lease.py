"""The lease a worker takes on a row of the poll outlasts the slowest send it may be in.

While a worker sends a deferred or re-opened acknowledgement, the row is its
own until the lease ends; a lease shorter than the send lets a second
worker take the row and the customer gets the acknowledgement twice. Every
network wait of our senders is bounded by a timeout: an SMTP session has
about a dozen and a half of them, a Twilio send one request (connect, read).
"""

from __future__ import annotations

from gateway.acks.acknowledger import RETRY_LEASE, RETRY_PAUSE
from gateway.acks.senders.mail import SMTP_TIMEOUT
from gateway.acks.senders.sms import TWILIO_TIMEOUT

# connect, greeting, EHLO, STARTTLS, TLS handshake, EHLO, AUTH (a method or
# three, up to two exchanges each), MAIL, RCPT, DATA, the message, QUIT.
SMTP_WAITS = 17


def test_the_lease_outlasts_an_smtp_session_that_waits_its_full_timeout_at_every_step() -> None:
    assert RETRY_LEASE.total_seconds() > SMTP_WAITS * SMTP_TIMEOUT


def test_the_lease_outlasts_a_twilio_request_that_waits_to_connect_and_to_read() -> None:
    assert RETRY_LEASE.total_seconds() > 2 * TWILIO_TIMEOUT


def test_a_try_not_sent_comes_again_before_the_lease_would_have_let_it_go() -> None:
    assert RETRY_PAUSE < RETRY_LEASE
