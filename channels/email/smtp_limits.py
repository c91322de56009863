"""Hourly message budgets of the SMTP receiver, per sender and per client address (S2).

sending MTA --DATA--> ``channels.email.smtp`` --> **MessageBudgets.over**
(counted in the store, so every receiver on the port agrees) --> the
complaint's hand-off, or ``450 4.7.1`` and the head of the message in
quarantine (``refuse``).

Every message that reaches the end of its DATA counts, whatever becomes of
it (a complaint, an auto-reply, a malformed mail quarantined): the budget
bounds what one sender can make the gateway store, not what it accepts. A
message over budget is not counted, so a sender who waits gets in again.
The reply is temporary: a real MTA retries later, a flood stops costing us.

Keys are keyed hashes (the settings' session secret) of the envelope sender
and of the client address: enough to count, useless to identify. The null
sender (``<>``, bounces) has no sender budget; its client's budget applies.
Nor do the authorities' addresses (``INTAKE_ORIGIN_*``): Bank Al-Maghrib may
forward many complaints in an hour from one address. An envelope sender is
anyone's to write, so their client address's budget still applies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime

from channels.email.smtp_policy import canonical_address
from channels.email.spool import DataSpool
from config.settings import Settings
from gateway.lib.services import Services
from gateway.store.intake import RefusedHead
from normalizer.contract import Channel
from normalizer.email.origin import CUSTOMER, classify_origin

log = logging.getLogger("intake.smtp")

RATE_LIMITED_CODE = "rate_limited"
RAW_CONTENT_TYPE = "message/rfc822"


@dataclass(frozen=True)
class OverBudget:
    """Which budget a message exceeded: ``sender`` or ``client``, and its size per hour."""

    which: str
    per_hour: int


class MessageBudgets:
    """The two hourly budgets; ``0`` in a setting turns that one off."""

    def __init__(self, services: Services) -> None:
        settings: Settings = services.settings
        self.services = services
        self.per_sender = settings.smtp_max_messages_per_sender_per_hour
        self.per_client = settings.smtp_max_messages_per_client_per_hour
        self._origin_rules = settings.origin_rules
        self._secret = (settings.session_secret.get_secret_value() or "intake-smtp").encode()
        self._senders = services.store.rate_limiter(self.per_sender) if self.per_sender else None
        self._clients = services.store.rate_limiter(self.per_client) if self.per_client else None

    @property
    def active(self) -> bool:
        """Whether a message is counted at all (both budgets may be turned off)."""
        return self._clients is not None or self._senders is not None

    def key(self, kind: str, value: str) -> str:
        return hmac.new(self._secret, f"smtp-{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def over(self, client: str, sender: str) -> OverBudget | None:
        """Count this message against both budgets; the first one it exceeds, if any.

        Runs SQL: call it from a worker thread. Raises ``StoreUnavailable``.
        """
        if self._clients is not None and not self._clients.allow(self.key("client", client)):
            return OverBudget("client", self.per_client)
        if (
            sender
            and self._senders is not None
            and classify_origin(sender, self._origin_rules) == CUSTOMER
            and not self._senders.allow(self.key("sender", canonical_address(sender)))
        ):
            return OverBudget("sender", self.per_sender)
        return None

    def refuse(
        self,
        over: OverBudget,
        spool: DataSpool,
        source_ids: dict[str, object],
        received_at: datetime,
    ) -> str:
        """Quarantine what was refused as metadata plus its head (never the whole body)."""
        reason = f"more than {over.per_hour} messages in an hour from this {over.which}"
        log.warning("mail refused (450): %s", reason)
        return self.services.store.complaints.quarantine(
            channel=Channel.EMAIL.value,
            data=RefusedHead(head=bytes(spool.head), size=spool.size, sha256=spool.sha256),
            content_type=RAW_CONTENT_TYPE,
            reason_code=RATE_LIMITED_CODE,
            reason=reason,
            source_ids={**source_ids, "received_at": received_at.isoformat()},
        )
