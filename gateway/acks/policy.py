"""Whether and how a complaint is acknowledged: tables, not if-chains.

complaint (from complaints.acks) -> **decide** -> a ``Plan`` (method,
recipient, languages) or a ``Skip`` (why not) -> the sender, or a row saying
why nothing was sent.

- ``SKIP_RULES``: complaints never acknowledged automatically (a follow-up
  of a complaint already acknowledged; one forwarded by Bank Al-Maghrib or
  the CMMB, whose sender is the institution, not the customer; an e-mail
  whose sender did not pass authentication, since its ``From`` may be
  anyone's: staff acknowledge those by hand).
- ``METHODS_BY_CHANNEL``: the order in which ways of reaching the customer
  are tried, per channel; a web form customer's own choice comes first.
- a method is passed over when it is not configured, the customer gave no
  such contact, the address is one that must never get one (our own, a
  no-reply or bounce address), an SMS or WhatsApp number of a country not
  in ``ack_sms_countries`` (SMS pumping), that recipient already had
  ``ack_max_per_recipient_per_day`` acknowledgements today, or the method's
  global daily budget (``BUDGETS``) is spent.
- when nothing is left and a budget was among the reasons, the decision is
  ``Skip(DAILY_BUDGET_EXHAUSTED)``: the acknowledger leaves the complaint
  for the next day's budget (within its 10 days) instead of giving up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import phonenumbers

from config.settings import Settings
from gateway.acks.texts import languages_for
from gateway.store.acks import BUDGET_METHODS, Budget
from normalizer.contract import Channel, ComplaintMessage, Origin

EMAIL, SMS, WHATSAPP, LETTER = "email", "sms", "whatsapp", "letter"
COUNTRY_NOT_ALLOWED = "country_not_allowed"
DAILY_BUDGET_EXHAUSTED = "daily_budget_exhausted"
SENDER_NOT_AUTHENTICATED = "sender_not_authenticated"
# Global daily budgets: name -> the methods that share it (a text costs us per message,
# wherever it goes; an e-mail from contact@cashplus.ma reaches a stranger's inbox).
BUDGETS: dict[str, tuple[str, ...]] = BUDGET_METHODS
BUDGET_OF: dict[str, str] = {
    method: name for name, methods in BUDGETS.items() for method in methods
}

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
    # Regions (ISO 3166 alpha-2) whose numbers may get an SMS or WhatsApp message.
    sms_countries: frozenset[str] = frozenset({"MA"})
    # Budget name (``BUDGETS``) -> acknowledgements allowed per local day; absent: no cap.
    budgets: Mapping[str, int] = field(default_factory=dict)

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
            sms_countries=frozenset(
                code.strip().upper()
                for code in settings.ack_sms_countries.split(",")
                if code.strip()
            ),
            budgets={"sms": settings.ack_sms_max_per_day, "email": settings.ack_email_max_per_day},
        )


def daily_budgets(context: AckContext) -> tuple[Budget, ...]:
    """The global daily budgets in force, for the store's claims."""
    return tuple(Budget(name, BUDGETS[name], limit) for name, limit in context.budgets.items())


SkipRule = Callable[[ComplaintMessage], Skip | None]


def _follow_up(message: ComplaintMessage) -> Skip | None:
    if message.follow_up_of:
        return Skip("follow_up", f"continues {message.follow_up_of}")
    return None


def _forwarded(message: ComplaintMessage) -> Skip | None:
    if message.origin is not Origin.CUSTOMER:
        return Skip("forwarded", f"sent by {message.origin.value}; acknowledged by staff")
    return None


def sender_authentication(message: ComplaintMessage) -> str:
    """The e-mail channel's verdict on the sender: ``pass``, ``fail`` or ``none``.

    Read from ``details["authentication"]["result"]`` (set by the e-mail
    channel from SPF/DKIM/DMARC); a complaint without one counts as ``none``.
    """
    verdict = message.details.get("authentication")
    result = verdict.get("result") if isinstance(verdict, Mapping) else None
    return result if isinstance(result, str) and result else "none"


def _unauthenticated(message: ComplaintMessage) -> Skip | None:
    """An e-mail's ``From`` is anyone's unless authenticated: no auto-reply to a forgery."""
    if message.channel is not Channel.EMAIL:
        return None
    result = sender_authentication(message)
    if result == "pass":
        return None
    return Skip(SENDER_NOT_AUTHENTICATED, f"sender authentication: {result}; acknowledged by staff")


SKIP_RULES: tuple[SkipRule, ...] = (_follow_up, _forwarded, _unauthenticated)


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
    elif method in (SMS, WHATSAPP):
        if recipient in context.own_numbers:
            return "own_address"
        if region_of(recipient) not in context.sms_countries:
            return COUNTRY_NOT_ALLOWED
    return None


def region_of(number: str) -> str | None:
    """The country (ISO 3166 alpha-2) of an E.164 number, ``None`` when it has none."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def nothing_spent(_budget: str) -> bool:
    """Budget check of a caller without budgets: every budget has room."""
    return True


def methods_for(message: ComplaintMessage, after: str | None = None) -> tuple[str, ...]:
    """The methods to try, in order; with ``after``, only those that come after it."""
    order = METHODS_BY_CHANNEL[message.channel]
    preferred = PREFERRED_METHOD.get(message.customer.preferred_contact or "")
    if preferred:
        order = (preferred, *(method for method in order if method != preferred))
    if after is not None:
        order = order[order.index(after) + 1 :] if after in order else ()
    return order


def decide(
    message: ComplaintMessage,
    context: AckContext,
    sent_today: Callable[[str], int],
    budget_left: Callable[[str], bool] = nothing_spent,
    *,
    after: str | None = None,
) -> Plan | Skip:
    """The first way of reaching the customer that is allowed, or why there is none.

    ``budget_left(name)``: whether the global daily budget ``name`` has room.
    ``after``: a method that could not reach the customer; only the ones after
    it in the channel's order are considered (the fallback chain).
    """
    for rule in SKIP_RULES:
        skipped = rule(message)
        if skipped is not None:
            return skipped
    passed_over: list[tuple[str, str]] = []
    for method in methods_for(message, after):
        recipient = recipient_for(message, method)
        if recipient is None:
            continue
        why = None if method in context.enabled_methods else "not_configured"
        why = why or blocked(recipient, method, context)
        if why is None and sent_today(recipient) >= context.max_per_day:
            why = "recipient_daily_limit"
        budget = BUDGET_OF.get(method)
        if why is None and budget is not None and budget in context.budgets:
            why = None if budget_left(budget) else DAILY_BUDGET_EXHAUSTED
        if why is not None:
            passed_over.append((method, why))
            continue
        return Plan(method=method, recipient=recipient, languages=languages_for(message))
    if not passed_over:
        return Skip("no_contact", "no e-mail, phone or postal address")
    detail = "; ".join(f"{m}: {why}" for m, why in passed_over)
    if any(why == DAILY_BUDGET_EXHAUSTED for _method, why in passed_over):
        # Tomorrow's budget can reach the customer: wait for it rather than give up.
        return Skip(DAILY_BUDGET_EXHAUSTED, detail)
    # The first method tried says most about why the customer got nothing.
    return Skip(passed_over[0][1], detail)
