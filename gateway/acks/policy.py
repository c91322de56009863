"""Whether and how a complaint is acknowledged: tables, not if-chains.

complaint (from complaints.acks) -> **decide** -> a ``Plan`` (method,
recipient, languages) or a ``Skip`` (why not) -> the sender, or a row saying
why nothing was sent.

- ``SKIP_RULES``: complaints never acknowledged automatically (a follow-up
  of a complaint already acknowledged; one forwarded by Bank Al-Maghrib or
  the CMMB, whose sender is the institution, not the customer).
- ``METHODS_BY_CHANNEL``: the order in which ways of reaching the customer
  are tried, per channel; a web form customer's own choice comes first.
- a method is passed over when it is not configured, the customer gave no
  such contact, the address is one that must never get one (our own, a
  no-reply or bounce address), or that recipient already had
  ``ack_max_per_recipient_per_day`` acknowledgements today.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from config.settings import Settings
from gateway.acks.texts import languages_for
from normalizer.contract import Channel, ComplaintMessage, Origin

EMAIL, SMS, WHATSAPP, LETTER = "email", "sms", "whatsapp", "letter"

METHODS_BY_CHANNEL: dict[Channel, tuple[str, ...]] = {
    Channel.EMAIL: (EMAIL, SMS),
    Channel.PHONE: (SMS, EMAIL),
    Channel.SMS: (SMS, EMAIL),
    Channel.WHATSAPP: (WHATSAPP, SMS, EMAIL),
    Channel.LETTER: (LETTER, EMAIL, SMS),
    Channel.WEBFORM: (EMAIL, SMS),
    Channel.API: (EMAIL, SMS, LETTER),
}
# The web form's "how would you like to be contacted" -> the acknowledgement's method.
PREFERRED_METHOD: dict[str, str] = {
    "email": EMAIL,
    "sms": SMS,
    "phone": SMS,  # a call cannot be automated; a text reaches the same phone
    "whatsapp": WHATSAPP,
    "letter": LETTER,
}
# Local parts of addresses that never read mail (RFC 3834 section 2; bounces, robots).
NEVER_LOCAL_PARTS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|bounces?|"
    r"auto-?reply|autoresponder|listserv|majordomo|notifications?)([+._-].*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Plan:
    method: str
    recipient: str
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Skip:
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class AckContext:
    """What the decision needs from the settings, read once."""

    enabled_methods: frozenset[str]
    own_addresses: frozenset[str]
    own_domains: frozenset[str]
    own_numbers: frozenset[str]
    max_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AckContext:
        twilio = bool(settings.twilio_account_sid and settings.twilio_auth_token.get_secret_value())
        enabled = {LETTER}
        if settings.smtp_relay_url.get_secret_value():
            enabled.add(EMAIL)
        if twilio and settings.twilio_phone_number:
            enabled.add(SMS)
        if twilio and settings.twilio_whatsapp_number:
            enabled.add(WHATSAPP)
        recipients = [item.strip().lower() for item in settings.smtp_recipients.split(",")]
        return cls(
            enabled_methods=frozenset(enabled),
            own_addresses=frozenset(
                [settings.ack_from.lower(), *(item for item in recipients if "@" in item)]
            ),
            own_domains=frozenset(
                [settings.smtp_hostname.lower(), *(i for i in recipients if i and "@" not in i)]
            ),
            own_numbers=frozenset(
                n for n in (settings.twilio_phone_number, settings.twilio_whatsapp_number) if n
            ),
            max_per_day=settings.ack_max_per_recipient_per_day,
        )


SkipRule = Callable[[ComplaintMessage], Skip | None]


def _follow_up(message: ComplaintMessage) -> Skip | None:
    if message.follow_up_of:
        return Skip("follow_up", f"continues {message.follow_up_of}")
    return None


def _forwarded(message: ComplaintMessage) -> Skip | None:
    if message.origin is not Origin.CUSTOMER:
        return Skip("forwarded", f"sent by {message.origin.value}; acknowledged by staff")
    return None


SKIP_RULES: tuple[SkipRule, ...] = (_follow_up, _forwarded)


def recipient_for(message: ComplaintMessage, method: str) -> str | None:
    """The normalized address the method would use (lower-case e-mail, E.164, postal)."""
    customer = message.customer
    found = {
        EMAIL: customer.email.lower() if customer.email else None,
        SMS: customer.phone,
        WHATSAPP: customer.phone,
        LETTER: customer.postal_address,
    }
    return found[method]


def blocked(recipient: str, method: str, context: AckContext) -> str | None:
    """Why this recipient must never get an automatic message, or ``None``."""
    if method == EMAIL:
        local, _, domain = recipient.rpartition("@")
        if recipient in context.own_addresses or domain in context.own_domains:
            return "own_address"
        if NEVER_LOCAL_PARTS.match(local):
            return "robot_address"
    elif method in (SMS, WHATSAPP) and recipient in context.own_numbers:
        return "own_address"
    return None


def methods_for(message: ComplaintMessage) -> tuple[str, ...]:
    order = METHODS_BY_CHANNEL[message.channel]
    preferred = PREFERRED_METHOD.get(message.customer.preferred_contact or "")
    if preferred:
        order = (preferred, *(method for method in order if method != preferred))
    return order


def decide(
    message: ComplaintMessage, context: AckContext, sent_today: Callable[[str], int]
) -> Plan | Skip:
    """The first way of reaching the customer that is allowed, or why there is none."""
    for rule in SKIP_RULES:
        skipped = rule(message)
        if skipped is not None:
            return skipped
    passed_over: list[tuple[str, str]] = []
    for method in methods_for(message):
        recipient = recipient_for(message, method)
        if recipient is None:
            continue
        why = None if method in context.enabled_methods else "not_configured"
        why = why or blocked(recipient, method, context)
        if why is None and sent_today(recipient) >= context.max_per_day:
            why = "recipient_daily_limit"
        if why is not None:
            passed_over.append((method, why))
            continue
        return Plan(method=method, recipient=recipient, languages=languages_for(message))
    if not passed_over:
        return Skip("no_contact", "no e-mail, phone or postal address")
    # The first method tried says most about why the customer got nothing.
    return Skip(passed_over[0][1], "; ".join(f"{m}: {why}" for m, why in passed_over))
