"""E-mail intake shared by the IMAP poller, the SMTP receiver and mailbox imports.

One raw message in, one outcome out:

- a complaint (new, or the one already recorded for the same mail),
- an auto-reply, bounce or bulk mail: stored as evidence and published as
  ``event.email.autoreply``, never as a complaint, never acknowledged,
- a bounce of one of our acknowledgements (``bounces``): kept as the
  evidence of ``ack.undelivered``; the acknowledgement goes by its next method,
- rejected (the sender's fault: malformed, over a limit): quarantined with
  the reason; the caller answers in its protocol's terms (SMTP 5xx, IMAP
  quarantine folder).

Our own failures (store down, normalizer broken) raise; the caller then
acknowledges nothing (SMTP 451, the IMAP message stays in the inbox).

``ingest_mail`` does one message; the IMAP poller splits it in two so a
fetched batch shares one commit: ``read_mail`` each message (quarantine and
auto-reply events are durable when it returns), then ``commit_mails`` for
the complaints among them.

Dedup: the Message-ID plus a hash of what the customer wrote (sender, date,
subject, text, attachment hashes). The same mail seen again after an IMAP
UIDVALIDITY change, a reconnect, or through both SMTP and IMAP (whose
``Received`` headers differ) is the same complaint.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from channels.email.bounces import acknowledgement_bounce
from channels.handoff import hand_off, hand_off_many, is_triaged
from config.settings import Settings
from gateway.lib.services import Services
from gateway.store.intake import IntakeResult
from normalizer.contact import build_customer
from normalizer.contract import Channel, Origin
from normalizer.draft import AttachmentDraft, ComplaintDraft, RawInput
from normalizer.email import AuthPolicy, EmailLimits, EmailRejected, ParsedEmail, parse_email
from normalizer.email.authentication import DnsFunc
from normalizer.email.origin import CUSTOMER
from normalizer.reference import find_references
from normalizer.triage import TriageKind, TriageSignal

log = logging.getLogger("intake.email")

RAW_CONTENT_TYPE = "message/rfc822"
# Where a quarantined mail keeps its receipt time (INTERNALDATE, the SMTP
# DATA time, the import's date), so that a replay is dated from its arrival.
RECEIVED_AT = "received_at"
AUTOREPLY_KIND = "email.autoreply"
# RFC 2369 / 2919: a mailing list or a newsletter sent it, not a customer.
LIST_HEADERS = ("List-Unsubscribe", "List-Id")
# The DKIM key lookup (None: DNS through dnspython); tests answer it themselves.
dkim_dnsfunc: DnsFunc | None = None


class MailOutcome(StrEnum):
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    REJECTED = "rejected"
    # Not a complaint (spam, phishing, marketing, thanks...): kept for staff to sort.
    TRIAGED = "triaged"
    # A bounce of one of our acknowledgements: kept as its evidence, the next method tried.
    BOUNCE = "bounce"


@dataclass(frozen=True)
class MailArrival:
    """A message as it reached us, before any interpretation."""

    raw: bytes
    # When Cash Plus received it: IMAP INTERNALDATE or our SMTP receipt time.
    received_at: datetime
    # Identifiers of the source: imap_uidvalidity, imap_uid, imap_folder,
    # smtp_peer, mail_from, rcpt_to, import_path ...
    source_ids: dict[str, Any] = field(default_factory=dict)
    # SMTP MAIL FROM when known ("" for the null reverse-path <>).
    envelope_sender: str | None = None
    # Whether whoever handed us the mail may have written its Authentication-Results
    # (S12). None: decided by the source, see ``trusts_authentication_results``.
    trust_authentication_results: bool | None = None
    # The bytes are a capture's, durable in the blob store already.
    durable: bool = False

    @property
    def trusts_authentication_results(self) -> bool:
        """Believe trusted ``Authentication-Results``? Said by the caller, else by the source.

        Not for a mail that came over SMTP (``smtp_peer``) unless the receiver
        said its peer is our own MX (anyone may connect to a public receiver
        and write them); yes for IMAP (the mailbox provider adds them) and imports.
        """
        if self.trust_authentication_results is not None:
            return self.trust_authentication_results
        return "smtp_peer" not in self.source_ids


@dataclass(frozen=True)
class MailResult:
    outcome: MailOutcome
    created: bool = False
    reference: str | None = None
    complaint_id: str | None = None
    reason_code: str | None = None
    reason: str | None = None


def email_limits(settings: Settings) -> EmailLimits:
    return EmailLimits(
        max_bytes=settings.email_max_bytes,
        max_parts=settings.email_max_parts,
        max_depth=settings.email_max_depth,
        max_header_bytes=settings.email_max_header_bytes,
    )


def auth_policy(settings: Settings, *, trust_authentication_results: bool = False) -> AuthPolicy:
    """What authenticates a mail's From domain (S12): trusted MX headers, our DKIM check.

    The headers count only with ``trust_authentication_results`` (the way
    the mail came lets us believe them: see ``MailArrival``).
    """
    return AuthPolicy.from_values(
        settings.trusted_authserv_ids,
        verify_dkim=settings.email_dkim_verify,
        dns_timeout=settings.email_dkim_dns_timeout,
        dnsfunc=dkim_dnsfunc,
        trust_authentication_results=trust_authentication_results,
    )


def parse_arrival(settings: Settings, arrival: MailArrival) -> ParsedEmail:
    """Parse with the configured limits, origin and authentication rules.

    Raises ``EmailRejected``.
    """
    return parse_email(
        arrival.raw,
        email_limits(settings),
        envelope_sender=arrival.envelope_sender,
        origin_rules=settings.origin_rules,
        auth_policy=auth_policy(
            settings, trust_authentication_results=arrival.trusts_authentication_results
        ),
    )


def mail_details(parsed: ParsedEmail) -> dict[str, Any]:
    """``details`` of an e-mail complaint: the authentication verdict, for every one.

    ``claimed_origin`` tells staff that an unauthenticated mail says it comes
    from an authority (its ``origin`` stays ``customer``).
    """
    details: dict[str, Any] = {"authentication": parsed.authentication.as_details()}
    if parsed.claimed_origin != CUSTOMER and parsed.origin == CUSTOMER:
        details["claimed_origin"] = parsed.claimed_origin
    return details


def content_key(parsed: ParsedEmail) -> str:
    """A hash of what the sender wrote, independent of transport headers."""
    digest = hashlib.sha256()
    for part in (
        parsed.from_address or "",
        parsed.date.isoformat() if parsed.date else "",
        parsed.subject,
        parsed.full_text,
        *(item.sha256 for item in parsed.attachments),
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def dedup_key_for(parsed: ParsedEmail) -> str:
    return f"email:{parsed.message_id or '-'}:{content_key(parsed)}"


def build_draft(parsed: ParsedEmail, received_at: datetime) -> ComplaintDraft:
    customer = build_customer(
        name=parsed.customer_name, email=parsed.customer_address, strict=False
    )
    return ComplaintDraft(
        channel=Channel.EMAIL,
        origin=Origin(parsed.origin),
        received_at=received_at,
        subject=parsed.subject or None,
        body=parsed.body or parsed.full_text,
        customer=customer,
        attachments=[
            AttachmentDraft(
                name=item.filename,
                data=item.data,
                declared_type=item.declared_type,
                content_type=item.sniffed_type,
            )
            for item in parsed.attachments
        ],
        follow_up_of=parsed.references_found[0] if parsed.references_found else None,
        forwarded=parsed.is_forward or parsed.forward_count > 0,
        details=mail_details(parsed),
    )


def _replied_complaint(services: Services, parsed: ParsedEmail) -> str | None:
    """The complaint this mail answers, from In-Reply-To / References.

    Our acknowledgements carry the reference in their Message-ID; a reply to
    the customer's own first mail is found by that mail's Message-ID.
    """
    replied_to = [item for item in (parsed.in_reply_to, *parsed.references) if item]
    quoted = find_references(" ".join(replied_to))
    if quoted:
        return quoted[0]
    return services.store.complaints.reference_for_message_ids(replied_to)


@dataclass(frozen=True)
class MailComplaint:
    """A mail read and found to be a complaint, ready for the commit."""

    raw: RawInput
    draft: ComplaintDraft


def ingest_mail(services: Services, arrival: MailArrival) -> MailResult:
    """Turn one raw message into a durable complaint, event or quarantine entry."""
    read = read_mail(services, arrival)
    if isinstance(read, MailResult):
        return read
    return complaint_result(hand_off(services, read.raw, read.draft))


def commit_mails(
    services: Services, complaints: Sequence[MailComplaint]
) -> list[MailResult | Exception]:
    """The complaints of a batch (an IMAP fetch) in one group commit; one outcome per mail.

    A mail whose commit failed gets its exception as its outcome; the others
    are committed all the same.
    """
    outcomes = hand_off_many(services, [(item.raw, item.draft) for item in complaints])
    return [
        outcome if isinstance(outcome, Exception) else complaint_result(outcome)
        for outcome in outcomes
    ]


def read_mail(services: Services, arrival: MailArrival) -> MailResult | MailComplaint:
    """Everything before the complaint's commit.

    A rejected mail is quarantined and an auto-reply stored as an event here
    (both durable when this returns their ``MailResult``); a complaint comes
    back as a ``MailComplaint`` for ``hand_off`` or ``commit_mails``.
    """
    try:
        parsed = parse_arrival(services.settings, arrival)
    except EmailRejected as exc:
        services.store.complaints.quarantine(
            channel=Channel.EMAIL.value,
            data=arrival.raw,
            content_type=RAW_CONTENT_TYPE,
            reason_code=exc.code,
            reason=exc.reason,
            source_ids={**arrival.source_ids, RECEIVED_AT: arrival.received_at.isoformat()},
        )
        return MailResult(MailOutcome.REJECTED, reason_code=exc.code, reason=exc.reason)
    raw = RawInput(
        channel=Channel.EMAIL,
        data=arrival.raw,
        content_type=RAW_CONTENT_TYPE,
        received_at=arrival.received_at,
        dedup_key=dedup_key_for(parsed),
        source_ids={**arrival.source_ids, "message_id": parsed.message_id},
        durable=arrival.durable,
    )
    if parsed.auto_reply:
        bounced = acknowledgement_bounce(services, raw, parsed)
        if bounced is not None:
            return MailResult(
                MailOutcome.BOUNCE,
                created=True,
                reference=bounced.reference,
                complaint_id=bounced.complaint_id,
                reason_code="bounce",
                reason="an acknowledgement could not be delivered",
            )
        event, created = services.store.complaints.record_event(
            raw,
            AUTOREPLY_KIND,
            {
                "reason": parsed.auto_reply,
                "from": parsed.from_address,
                "subject": parsed.subject,
                "message_id": parsed.message_id,
            },
        )
        log.info("auto-reply stored as event %s: %s", event.id, parsed.auto_reply)
        return MailResult(MailOutcome.AUTO_REPLY, created=created)
    draft = build_draft(parsed, arrival.received_at)
    if draft.follow_up_of is None:
        draft.follow_up_of = _replied_complaint(services, parsed)
    draft.triage_signals = triage_signals(services, parsed, arrival.raw)
    return MailComplaint(raw, draft)


def triage_signals(services: Services, parsed: ParsedEmail, raw: bytes) -> tuple[TriageSignal, ...]:
    """What only the mail tells of its kind: spamd's verdict, mailing-list headers."""
    signals: list[TriageSignal] = []
    spam_filter = services.spam_filter
    if spam_filter is not None:
        signals.extend(spam_filter.signals(raw))
    listed = [name for name in LIST_HEADERS if parsed.headers.get(name)]
    if listed:
        signals.append(TriageSignal(TriageKind.MARKETING, "headers", ", ".join(listed)))
    return tuple(signals)


def complaint_result(result: IntakeResult) -> MailResult:
    if is_triaged(result.message):
        return MailResult(
            MailOutcome.TRIAGED,
            created=result.created,
            reference=result.message.reference,
            complaint_id=None,
        )
    return MailResult(
        MailOutcome.COMPLAINT,
        created=result.created,
        reference=result.message.reference,
        complaint_id=result.message.id,
    )
