"""SMS and WhatsApp acknowledgements through Twilio's REST API (the twilio client).

``Acknowledger`` -> **TwilioSender** (one short text, first language only)
-> ``POST /2010-04-01/Accounts/{sid}/Messages.json`` -> the customer's phone.

Length: an SMS is billed and split in segments. Text that fits GSM-7 gets
160 characters in one segment (153 per segment when split); anything else,
Arabic, Tifinagh and Tamazight's Latin letters (ɣ, ṭ) included, is sent as
UCS-2: 70 UTF-16 units in one segment, 67 when split. ``segments`` counts
them, and a template that would take more than ``MAX_SEGMENTS`` is refused
at render time (a unit test renders every one).

The client's base URL is ``INTAKE_TWILIO_API_BASE_URL`` (tests point it at a
local stand-in): twilio's ``Domain`` builds every URL from ``base_url``.

Twilio's refusals are told apart by its error code (``classify``): a
number that is invalid, unreachable, not mobile, or has opted out is the
recipient's (recorded as failed for that complaint); anything else in 4xx
is ours, our credentials, account, sender number or region permissions
(retried later, logged as an error once); 429 and 5xx are Twilio's own
trouble (retried).

Delivery: each message names ``STATUS_CALLBACK_PATH`` as its ``StatusCallback``;
Twilio posts there what became of it (``queued``, ``sent``, ``delivered``,
``undelivered``, ``failed`` with an ``ErrorCode``), and an undelivered one is
sent again by the next method (``gateway.acks.deliveries``).

WhatsApp: a message the business starts must be an approved template
(Meta's rule), so an acknowledgement goes out through Twilio's Content API:
the ``ContentSid`` configured for the acknowledgement's first language
(``INTAKE_TWILIO_WHATSAPP_ACK_TEMPLATES``) and ``ContentVariables``
(``1`` the reference, ``2`` the acknowledgement's due date, ``3`` the answer's,
worded in that language), no ``Body``. A language without a template, and
Twilio's template refusals (``TEMPLATE_CODES``: 63016 outside the 24-hour
window, 63027 no template for the language, 63028 variables that do not
match, 63021 / 63030 content the channel refuses), raise a ``fallback``
failure: the acknowledger tries the next method (SMS, then e-mail), and
records the failure for staff when none is left. A notice (a longer delay)
has no approved template: it is sent as text, and falls back the same way.
"""

from __future__ import annotations

import json
import math

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from config.settings import Settings
from config.templates import parse_content_sids
from gateway.acks.policy import WHATSAPP
from gateway.acks.senders import RECIPIENT_REFUSED, Outgoing, SendFailed, Sent
from gateway.acks.texts import languages_for, render, variables, written_date
from normalizer.errors import OurFailure

MAX_SEGMENTS = 2
# Where Twilio reports what became of each message (``gateway.acks.deliveries``),
# under INTAKE_PUBLIC_BASE_URL; signed like every webhook of the line.
STATUS_CALLBACK_PATH = "/twilio/acks/status"
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
# Twilio error codes refusing a WhatsApp template (or a free-form text that needed one).
TEMPLATE_CODES: dict[int, str] = {
    63016: "outside the 24-hour window: an approved template is needed",
    63021: "content refused by the channel",
    63027: "template does not exist for this language",
    63028: "template variables do not match",
    63030: "parameter not supported with a template",
}
# The client's keyword -> the form field Twilio receives (kept as evidence under that name).
FORM_NAMES = {
    "body": "Body",
    "content_sid": "ContentSid",
    "content_variables": "ContentVariables",
    "status_callback": "StatusCallback",
}
RECIPIENT, OURS, PROVIDER = RECIPIENT_REFUSED, "provider_account", "provider_unavailable"
TEMPLATE_REFUSED, NO_TEMPLATE = "whatsapp_template_refused", "whatsapp_no_template"
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
    if code in TEMPLATE_CODES:
        return TEMPLATE_REFUSED
    # 401/403/404 (credentials, account SID, base URL) and account-side
    # codes (21606 From number, 21408 region permission, 21608 trial...).
    return OURS


def refusal(exc: TwilioRestException, method: str = "") -> SendFailed:
    """The refusal as a ``SendFailed``; a WhatsApp one the next method may get past."""
    reason = classify(exc.status, exc.code)
    detail = f"{exc.status} {exc.code}: {exc.msg}"[:500]
    fallback = reason == TEMPLATE_REFUSED or (method == WHATSAPP and reason == RECIPIENT)
    return SendFailed(
        reason,
        detail,
        permanent=reason in (RECIPIENT, TEMPLATE_REFUSED),
        configuration=reason == OURS,
        fallback=fallback,
    )


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


def content_variables(outgoing: Outgoing, language: str, zone: str) -> str:
    """The template's ``ContentVariables``: a JSON object of numbered strings."""
    message = outgoing.message
    values = {
        "1": message.reference,
        "2": written_date(message.ack_due_at, language, zone),
        "3": written_date(message.answer_due_at, language, zone),
    }
    return json.dumps(values, ensure_ascii=False)


class TwilioSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Language -> approved WhatsApp template (validated when the settings were read).
        self.templates = parse_content_sids(settings.twilio_whatsapp_ack_templates)
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

    def _content(self, outgoing: Outgoing) -> dict[str, str]:
        """What the message says: a WhatsApp template and its variables, or a text."""
        if outgoing.plan.method == WHATSAPP and outgoing.notice is None:
            language = languages_for(outgoing.message)[0]
            content_sid = self.templates.get(language)
            if content_sid is None:
                detail = f"no WhatsApp template for {language!r}"
                raise SendFailed(NO_TEMPLATE, detail, permanent=True, fallback=True)
            variables = content_variables(outgoing, language, self.settings.timezone)
            return {"content_sid": content_sid, "content_variables": variables}
        return {"body": sms_text(outgoing, self.settings.timezone, self.settings.answer_days)}

    def status_callback(self) -> str | None:
        """The URL Twilio posts the message's status to; none without a public URL."""
        base = self.settings.public_base_url.rstrip("/")
        return f"{base}{STATUS_CALLBACK_PATH}" if base else None

    def send(self, outgoing: Outgoing) -> Sent:
        content = self._content(outgoing)
        to, sender = self._addresses(outgoing)
        callback = self.status_callback()
        if callback:
            content["status_callback"] = callback
        try:
            created = self.client.messages.create(to=to, from_=sender, **content)
        except TwilioRestException as exc:
            raise refusal(exc, outgoing.plan.method) from None
        except (TwilioException, OSError) as exc:
            raise SendFailed(PROVIDER, type(exc).__name__, permanent=False) from None
        request = {"To": to, "From": sender} | {FORM_NAMES[k]: v for k, v in content.items()}
        request["Sid"] = created.sid
        return Sent(
            evidence=json.dumps(request, ensure_ascii=False).encode(),
            content_type="application/json",
            provider_id=created.sid,
            delivery=str(created.status or "queued"),
        )
