"""SMS and WhatsApp acknowledgements through Twilio's REST API (the twilio client).

``Acknowledger`` -> **TwilioSender** (one short text, first language only)
-> ``POST /2010-04-01/Accounts/{sid}/Messages.json`` -> the customer's phone.

Length: an SMS is billed and split in segments. Text that fits GSM-7 gets
160 characters in one segment (153 per segment when split); anything else,
Arabic included, is sent as UCS-2: 70 UTF-16 units in one segment, 67 when
split. ``segments`` counts them, and a template that would take more than
``MAX_SEGMENTS`` is refused at render time (a unit test renders every one).

The client's base URL is ``INTAKE_TWILIO_API_BASE_URL`` (tests point it at a
local stand-in): twilio's ``Domain`` builds every URL from ``base_url``.

Twilio's refusals are told apart by its error code (``classify``): a
number that is invalid, unreachable, not mobile, or has opted out is the
recipient's (recorded as failed for that complaint); anything else in 4xx
is ours, our credentials, account, sender number or region permissions
(retried later, logged as an error once); 429 and 5xx are Twilio's own
trouble (retried).
"""

from __future__ import annotations

import json
import math

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from config.settings import Settings
from gateway.acks.policy import WHATSAPP
from gateway.acks.senders import RECIPIENT_REFUSED, Outgoing, SendFailed, Sent
from gateway.acks.texts import languages_for, render, variables
from normalizer.errors import OurFailure

MAX_SEGMENTS = 2
TWILIO_TIMEOUT = 30.0
# Twilio error codes that are about the recipient's number: retrying cannot help.
RECIPIENT_CODES: dict[int, str] = {
    21211: "invalid 'To' number",
    21214: "'To' number cannot be reached",
    21217: "number does not appear to be valid",
    21401: "invalid phone number",
    21407: "number type does not support SMS",
    21421: "invalid phone number",
    21610: "recipient unsubscribed (STOP)",
    21612: "'To' number not reachable by this channel",
    21614: "'To' number is not a mobile number",
    63003: "WhatsApp: no account for this number",
    63024: "WhatsApp: invalid recipient",
}
RECIPIENT, OURS, PROVIDER = RECIPIENT_REFUSED, "provider_account", "provider_unavailable"
# GSM 03.38 basic character set, and the extension table (two septets each).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def segments(text: str) -> tuple[str, int]:
    """(encoding, number of segments) of an SMS body, as carriers count them."""
    if all(char in GSM_BASIC or char in GSM_EXTENDED for char in text):
        septets = len(text) + sum(char in GSM_EXTENDED for char in text)
        return "GSM-7", 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


def classify(status: int, code: int | None) -> str:
    """Whose problem a Twilio refusal is: the recipient's, ours, or Twilio's own."""
    if status == 429 or status >= 500:
        return PROVIDER
    if code in RECIPIENT_CODES:
        return RECIPIENT
    # 401/403/404 (credentials, account SID, base URL) and account-side
    # codes (21606 From number, 21408 region permission, 21608 trial...).
    return OURS


def refusal(exc: TwilioRestException) -> SendFailed:
    reason = classify(exc.status, exc.code)
    detail = f"{exc.status} {exc.code}: {exc.msg}"[:500]
    return SendFailed(reason, detail, permanent=reason == RECIPIENT, configuration=reason == OURS)


class TooLong(OurFailure, ValueError):
    """A template renders to more segments than allowed: fix the template."""


def sms_text(outgoing: Outgoing, zone: str, answer_days: int) -> str:
    language = languages_for(outgoing.message)[0]
    values = variables(outgoing.message, language, zone, answer_days) | outgoing.values_for(
        language
    )
    text = render(outgoing.template("sms"), language, values)
    encoding, count = segments(text)
    if count > MAX_SEGMENTS:
        raise TooLong(f"{language} SMS takes {count} {encoding} segments (at most {MAX_SEGMENTS})")
    return text


class TwilioSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=TwilioHttpClient(timeout=TWILIO_TIMEOUT),
        )
        self.client.api.base_url = settings.twilio_api_base_url.rstrip("/")

    def _addresses(self, outgoing: Outgoing) -> tuple[str, str]:
        if outgoing.plan.method == WHATSAPP:
            return (
                f"whatsapp:{outgoing.plan.recipient}",
                f"whatsapp:{self.settings.twilio_whatsapp_number}",
            )
        return outgoing.plan.recipient, self.settings.twilio_phone_number

    def send(self, outgoing: Outgoing) -> Sent:
        body = sms_text(outgoing, self.settings.timezone, self.settings.answer_days)
        to, sender = self._addresses(outgoing)
        try:
            created = self.client.messages.create(to=to, from_=sender, body=body)
        except TwilioRestException as exc:
            raise refusal(exc) from None
        except (TwilioException, OSError) as exc:
            raise SendFailed(PROVIDER, type(exc).__name__, permanent=False) from None
        request = {"To": to, "From": sender, "Body": body, "Sid": created.sid}
        return Sent(
            evidence=json.dumps(request, ensure_ascii=False).encode(),
            content_type="application/json",
            provider_id=created.sid,
        )
