"""The fallback chain of acknowledgements: which refusals pass to the next method, and which next.

A WhatsApp template refusal (63016 outside the 24-hour window, 63027 no
template for the language, 63028 variables that do not match) is not the
end: the next method of the channel's order is tried. Our account's
trouble is not a reason to change method (it is retried).
"""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from gateway.acks.policy import EMAIL, LETTER, SMS, WHATSAPP, methods_for
from gateway.acks.senders.sms import TEMPLATE_REFUSED, refusal
from normalizer.contract import Channel
from tests.unit.test_acks_policy import complaint

URI = "/2010-04-01/Accounts/AC1/Messages.json"


def refused(code: int) -> TwilioRestException:
    return TwilioRestException(400, URI, msg="refused", code=code, method="POST")


@pytest.mark.parametrize("code", [63016, 63027, 63028])
def test_a_template_refusal_falls_back_to_the_next_method(code: int) -> None:
    failure = refusal(refused(code), WHATSAPP)
    assert (failure.reason, failure.fallback, failure.configuration) == (
        TEMPLATE_REFUSED,
        True,
        False,
    )


def test_no_whatsapp_account_on_the_number_falls_back_to_sms() -> None:
    assert refusal(refused(63003), WHATSAPP).fallback


def test_our_account_trouble_is_retried_not_fallen_back_from() -> None:
    failure = refusal(refused(20003), WHATSAPP)
    assert not failure.fallback and not failure.permanent and failure.configuration


def test_after_whatsapp_come_sms_then_email() -> None:
    message = complaint(Channel.WHATSAPP)
    assert methods_for(message) == (WHATSAPP, SMS, EMAIL)
    assert methods_for(message, after=WHATSAPP) == (SMS, EMAIL)
    assert methods_for(message, after=EMAIL) == ()


def test_a_method_outside_the_channel_order_leaves_nothing_to_fall_back_to() -> None:
    assert methods_for(complaint(Channel.WHATSAPP), after=LETTER) == ()
