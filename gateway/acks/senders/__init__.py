"""The acknowledgement senders: the interface each implements, and its two failures.

ack worker -> ``Acknowledger`` -> **a Sender** (``mail``: e-mail, ``sms``:
SMS/WhatsApp, ``letter``: a PDF for the mailroom) -> ``Sent`` (what went
out, kept as evidence) or ``SendFailed``.

The senders know nothing of the acknowledger or the mailroom: they take an
``Outgoing`` and say what went out.

Two kinds of failure, as at every edge of the gateway: ``permanent`` (the
recipient was refused, the number does not exist: retrying cannot help, the
failure is recorded and published) and not permanent (the relay or Twilio
is unreachable, our credentials are wrong: the complaint goes back on the
queue and is tried again later: a few times from the queue, then by the
workers' poll on a schedule until just before the acknowledgement
deadline, and only then recorded as failed; ``intake ack retry`` brings
those tries forward once the cause is fixed). ``configuration`` marks what
only an operator can fix (a wrong password, a From number not on the
account): it is logged as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.acks.policy import Plan
from gateway.store.acks import PERMANENT_REASONS, RECIPIENT_REFUSED
from normalizer.contract import ComplaintMessage
from normalizer.errors import OurFailure

# The reasons of a refusal for good are the store's (``intake ack retry`` reads them).
__all__ = [
    "PERMANENT_REASONS",
    "RECIPIENT_REFUSED",
    "Outgoing",
    "SendFailed",
    "Sender",
    "Sent",
]


class SendFailed(OurFailure):
    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        permanent: bool,
        configuration: bool = False,
        fallback: bool = False,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.permanent = permanent
        self.configuration = configuration
        # This method cannot reach the customer (no WhatsApp template, one Twilio
        # refused, no WhatsApp account): the next method of the channel's order is tried.
        self.fallback = fallback


@dataclass(frozen=True)
class Outgoing:
    message: ComplaintMessage
    plan: Plan
    # Drawn once per complaint and stored before sending, so a resend after a
    # crash carries the same Message-ID and mail clients show one message.
    message_id: str
    # The acknowledgement's row: an e-mail's return path names it (VERP), so a bounce does.
    ack_id: str = ""
    # Another notice than the acknowledgement (``extension``: a longer delay): its
    # texts are ``templates/<language>/<notice>/``; ``values`` adds what they name,
    # per language (a date is worded in each).
    notice: str | None = None
    values: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def values_for(self, language: str) -> dict[str, object]:
        return dict(self.values.get(language, {}))

    def template(self, name: str) -> str:
        """The template ``name`` (email, sms, letter) of this notice."""
        return name if self.notice is None else f"{self.notice}/{name}"


@dataclass(frozen=True)
class Sent:
    evidence: bytes  # exactly what went out: the e-mail, the API request, the PDF
    content_type: str
    provider_id: str | None = None
    # "sent", or "queued" for a letter waiting for the mailroom to post it.
    status: str = "sent"
    document: str | None = None  # blob location of a letter's PDF
    # What the provider said of it when it took it (Twilio's "queued"; "sent" for an
    # e-mail the relay took): its delivery is then tracked (status callbacks, bounces).
    delivery: str | None = None


class Sender(Protocol):
    def send(self, outgoing: Outgoing) -> Sent: ...
