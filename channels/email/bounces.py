"""Bounces of our own acknowledgement e-mails: an undelivered acknowledgement, not a complaint.

``read_mail`` (a mail found automatic) -> **acknowledgement_bounce**: an RFC 3464
report (``normalizer.email.dsn``) that says a recipient failed, addressed to
an acknowledgement's VERP return path (``INTAKE_ACK_BOUNCE_ADDRESS``, plus
the acknowledgement's id) or quoting an acknowledgement's Message-ID ->
``Store.deliveries.report``: the bounce kept as evidence of ``ack.undelivered``,
the acknowledgement left to the workers' poll, which tries the next method
(an SMS when a phone is known, else the staff list).

Anything else (a bounce of a mail that is not ours, a delay warning, a
report repeated after the first one was applied) goes on as an auto-reply
event: kept as evidence all the same, never a complaint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store.deliveries import DeliveryNotice, DeliveryOutcome
from normalizer.draft import RawInput
from normalizer.email import ParsedEmail
from normalizer.email.dsn import Bounce, parse_dsn, verp_token

log = logging.getLogger("intake.email")

UNDELIVERED = "undelivered"


def acknowledgement_bounce(
    services: Services, raw: RawInput, parsed: ParsedEmail
) -> DeliveryOutcome | None:
    """The bounce applied to one of our acknowledgements; ``None`` when it is not one."""
    bounce = parse_dsn(raw.data)
    if bounce is None or not bounce.failed:
        return None
    rcpt_to = raw.source_ids.get("rcpt_to") or []
    token = _verp_token(services.settings.ack_bounce_address, [*rcpt_to, *bounce.addressed_to])
    notice = DeliveryNotice(
        state=UNDELIVERED,
        error=bounce.status,
        ack_id=token,
        message_ids=_quoted_ids(bounce, parsed),
        source="bounce",
    )
    if notice.ack_id is None and not notice.message_ids:
        return None
    outcome = services.store.deliveries.report(notice, raw)
    if not outcome.found or not outcome.changed:
        return None
    with complaint_context(outcome.complaint_id or ""):
        log.info(
            "bounce of the acknowledgement of %s (%s)%s",
            outcome.reference,
            bounce.status or "no status",
            ": the next method is tried" if outcome.resend else "",
        )
    return outcome


def _verp_token(base: str, addresses: Iterable[object]) -> str | None:
    if not base:
        return None
    for address in addresses:
        token = verp_token(base, str(address))
        if token:
            return token
    return None


def _quoted_ids(bounce: Bounce, parsed: ParsedEmail) -> tuple[str, ...]:
    """The Message-IDs the report quotes: the returned message's, then the threading headers."""
    found = [bounce.original_message_id, parsed.in_reply_to, *parsed.references]
    return tuple(dict.fromkeys(item for item in found if item))
