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
"""

from __future__ import annotations

import json
import math

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channels.acks.policy import WHATSAPP
from channels.acks.sending import Outgoing, SendFailed, Sent
from channels.acks.texts import languages_for, render, variables
from config.settings import Settings

MAX_SEGMENTS = 2
TWILIO_TIMEOUT = 30.0
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


class TooLong(ValueError):
    """A template renders to more segments than allowed: fix the template."""


def sms_text(outgoing: Outgoing, zone: str, answer_days: int) -> str:
    language = languages_for(outgoing.message)[0]
    text = render("sms", language, variables(outgoing.message, language, zone, answer_days))
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
            # 4xx (an invalid or unreachable number) is final; 429 and 5xx are Twilio's own trouble.
            permanent = 400 <= exc.status < 500 and exc.status != 429
            detail = f"{exc.status} {exc.code}: {exc.msg}"[:500]
            raise SendFailed("recipient_refused", detail, permanent=permanent) from None
        except (TwilioException, OSError) as exc:
            raise SendFailed("provider_unavailable", type(exc).__name__, permanent=False) from None
        request = {"To": to, "From": sender, "Body": body, "Sid": created.sid}
        return Sent(
            evidence=json.dumps(request, ensure_ascii=False).encode(),
            content_type="application/json",
            provider_id=created.sid,
        )
