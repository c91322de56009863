"""Twilio refusals told apart by error code: the recipient's number, our account, Twilio itself.

The recipient's problems are final for that complaint; ours (credentials,
account SID, sender number, region permission) are retried later and
flagged for an operator; 429 and 5xx are Twilio's own trouble. The
exceptions are the twilio library's own ``TwilioRestException``.
"""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from gateway.acks.senders.sms import OURS, PROVIDER, RECIPIENT, refusal

URI = "/2010-04-01/Accounts/AC1/Messages.json"


def refused(status: int, code: int | None) -> TwilioRestException:
    return TwilioRestException(status, URI, msg="refused", code=code, method="POST")


@pytest.mark.parametrize("code", [21211, 21610, 21612, 21614, 63003])
def test_a_number_that_is_invalid_unreachable_or_opted_out_is_final(code: int) -> None:
    failure = refusal(refused(400, code))
    assert (failure.reason, failure.permanent, failure.configuration) == (RECIPIENT, True, False)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, 20003),  # wrong auth token
        (404, 20404),  # wrong account SID or base URL
        (400, 21606),  # From number not on the account
        (400, 21408),  # region not enabled on the account
        (400, 21608),  # trial account
        (403, None),
        (400, None),  # a 400 whose code we do not know: ours until proven otherwise
    ],
)
def test_our_credentials_and_account_settings_are_retried_and_flagged(
    status: int, code: int | None
) -> None:
    failure = refusal(refused(status, code))
    assert (failure.reason, failure.permanent, failure.configuration) == (OURS, False, True)
    assert failure.detail.startswith(f"{status} {code}")


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, None), (503, 20500)])
def test_twilio_s_own_trouble_is_retried(status: int, code: int | None) -> None:
    failure = refusal(refused(status, code))
    assert (failure.reason, failure.permanent, failure.configuration) == (PROVIDER, False, False)
