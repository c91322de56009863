"""E-mail acknowledgements: a threaded, RFC 3834 auto-reply through the SMTP relay.

``Acknowledger`` -> **EmailSender** (compose: text + HTML, per-language
blocks; send: ``INTAKE_SMTP_RELAY_URL``) -> the customer's mailbox.

The reply threads with the customer's own message (``In-Reply-To`` and
``References`` carry its Message-ID) and its own Message-ID carries the
complaint reference (``<ack.CP-XXXX-XXXX.<random>@host>``), so when the
customer answers, the e-mail channel links the answer to the complaint.
``Auto-Submitted`` (RFC 3834) and ``X-Auto-Response-Suppress`` keep
out-of-office robots from answering it. The relay URL is
``smtp://[user:password@]host[:port]``, ``smtps://`` for implicit TLS, or
``?starttls=true`` to upgrade a plain connection.
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from channels.acks.sending import Outgoing, SendFailed, Sent
from channels.acks.texts import Block, blocks, html_document
from config.settings import Settings

SENDER_NAME = "Cash Plus – Service Réclamations"
SMTP_TIMEOUT = 30.0
TRUE = {"1", "true", "yes", "on"}


def new_message_id(reference: str, hostname: str) -> str:
    return f"<ack.{reference}.{secrets.token_hex(8)}@{hostname}>"


def compose(outgoing: Outgoing, parts: list[Block], sender: str) -> EmailMessage:
    """The acknowledgement as an e-mail: headers, a text part and an HTML part."""
    message = outgoing.message
    mail = EmailMessage()
    mail["From"] = formataddr((SENDER_NAME, sender))
    mail["To"] = formataddr((message.customer.name or "", outgoing.plan.recipient))
    mail["Reply-To"] = sender
    subject = " / ".join(part.subject for part in parts)
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = outgoing.message_id
    original = message.evidence.message_id
    if original:
        mail["In-Reply-To"] = original
        mail["References"] = original
    # RFC 3834: a reply to a message is "auto-replied"; to a form or a call, "auto-generated".
    mail["Auto-Submitted"] = "auto-replied" if original else "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    separator = "\n\n" + "—" * 20 + "\n\n"
    mail.set_content(separator.join(part.text for part in parts) + "\n", charset="utf-8")
    mail.add_alternative(html_document(parts, subject, message.reference), subtype="html")
    # After the parts: set_content() clears every Content-* header it finds.
    mail["Content-Language"] = ", ".join(part.language for part in parts)
    return mail


class SmtpRelay:
    """One connection per acknowledgement: they are few, and a connection cannot go stale."""

    def __init__(self, url: str, local_hostname: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(
                "INTAKE_SMTP_RELAY_URL: expected smtp://host:port or smtps://host:port"
            )
        self.implicit_tls = parts.scheme == "smtps"
        self.starttls = parse_qs(parts.query).get("starttls", [""])[0].lower() in TRUE
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password or "")
        self.local_hostname = local_hostname

    def send(self, mail: EmailMessage, sender: str, recipient: str) -> None:
        try:
            with self._connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(mail, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _failure("recipient_refused", code, text) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _failure("message_refused", exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailed("relay_unavailable", type(exc).__name__, permanent=False) from None

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=SMTP_TIMEOUT,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=SMTP_TIMEOUT
        )


def _failure(reason: str, code: int, text: bytes | str) -> SendFailed:
    """5xx is the recipient's server saying no for good; 4xx means try again later."""
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return SendFailed(reason, f"{code} {words}"[:500], permanent=code >= 500)


class EmailSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sender = settings.ack_from
        self.relay = SmtpRelay(settings.smtp_relay_url.get_secret_value(), settings.smtp_hostname)

    def send(self, outgoing: Outgoing) -> Sent:
        settings = self.settings
        parts = blocks(outgoing.message, "email", settings.timezone, settings.answer_days)
        mail = compose(outgoing, parts, self.sender)
        self.relay.send(mail, self.sender, outgoing.plan.recipient)
        return Sent(
            evidence=mail.as_bytes(),
            content_type="message/rfc822",
            provider_id=outgoing.message_id,
        )
