"""E-mail acknowledgements: a threaded, RFC 3834 auto-reply through the SMTP relay.

``Acknowledger`` -> **EmailSender** (compose: text + HTML, per-language
blocks; send: ``INTAKE_SMTP_RELAY_URL``) -> the customer's mailbox.

The reply threads with the customer's own message (RFC 5322 3.6.4):
``In-Reply-To`` is its Message-ID and ``References`` its References chain
followed by its Message-ID (the thread's root and the latest ids when the
chain is long); the References are read from the e-mail as received (the
evidence).

No text a stranger typed goes out (review S5: our DKIM-signed mail must not
carry someone's phishing sentence): the subject is always our own, fixed
per language with the reference ("Votre réclamation CP-XXXX-XXXX ..."),
never the customer's (a client that groups by subject, such as Gmail, may
show it as a new conversation; the threading headers still link it); the
greeting names nobody; ``To`` is the bare address, without the name the
form or the ``From`` header gave. The reference is in the first sentence
of the text (inbox previews show it), and our own Message-ID carries it
(``<ack.CP-XXXX-XXXX.<random>@host>``), so when the customer answers, the
e-mail channel links the answer to the complaint.
``Auto-Submitted`` (RFC 3834: ``auto-replied`` to an e-mail,
``auto-generated`` otherwise) and ``X-Auto-Response-Suppress`` keep
out-of-office robots from answering it.

The envelope sender (return path) is ``INTAKE_ACK_BOUNCE_ADDRESS`` with the
acknowledgement's id (``bounces+<id>@...``, VERP) when set, so a bounce
names the acknowledgement; the e-mail channel turns it into an undelivered
acknowledgement (``gateway.store.deliveries``) and the next method is tried.

The relay URL is ``smtp://[user:password@]host[:port]``, ``smtps://`` for
implicit TLS, or ``?starttls=true`` to upgrade a plain connection. TLS
verifies the relay's certificate against the system's authorities
(``SSL_CERT_FILE`` names another bundle). A refused login or a TLS failure
is our configuration, not the customer's: retried, and logged as an error.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from config.settings import Settings
from gateway.acks.senders import RECIPIENT_REFUSED, Outgoing, SendFailed, Sent
from gateway.acks.texts import Block, blocks, html_document
from gateway.store.blobs import BlobStore
from normalizer.contract import ComplaintMessage
from normalizer.email.dsn import verp_address
from normalizer.email.headers import header_text, message_ids
from normalizer.email.mimepolicy import POLICY

log = logging.getLogger("intake.acks")

SENDER_NAME = "Cash Plus – Service Réclamations"
SMTP_TIMEOUT = 30.0
TRUE = {"1", "true", "yes", "on"}
# Ids kept in References: the thread's root and the latest ones (RFC 5322 3.6.4 allows trimming).
MAX_REFERENCES = 10


@dataclass(frozen=True)
class Thread:
    """The customer's e-mail as a thread: its References chain, as received."""

    references: tuple[str, ...] = ()


def thread_of(message: ComplaintMessage, blobs: BlobStore | None) -> Thread:
    """Read the References from the raw e-mail (the complaint does not keep them)."""
    if blobs is None or not message.evidence.message_id:
        return Thread()
    try:
        raw = blobs.get(message.evidence.stored_at)
    except OSError as exc:  # the evidence moved or is unreadable: thread on the Message-ID alone
        log.warning("raw e-mail of %s unreadable (%s)", message.reference, type(exc).__name__)
        return Thread()
    headers = BytesParser(policy=POLICY).parsebytes(raw, headersonly=True)
    return Thread(message_ids(header_text(headers, "References")))


def references_for(theirs: tuple[str, ...], message_id: str) -> str:
    """Their References and their Message-ID: the root and the latest ids when long."""
    chain = [item for item in theirs if item != message_id] + [message_id]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return " ".join(chain)


def new_message_id(reference: str, hostname: str) -> str:
    return f"<ack.{reference}.{secrets.token_hex(8)}@{hostname}>"


def compose(
    outgoing: Outgoing, parts: list[Block], sender: str, thread: Thread | None = None
) -> EmailMessage:
    """The acknowledgement as an e-mail: headers, a text part and an HTML part."""
    message = outgoing.message
    thread = thread or Thread()
    mail = EmailMessage()
    mail["From"] = formataddr((SENDER_NAME, sender))
    mail["To"] = outgoing.plan.recipient  # no display name: it is text a stranger typed
    mail["Reply-To"] = sender
    original = message.evidence.message_id
    subject = " / ".join(part.subject for part in parts)  # ours, never theirs
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = outgoing.message_id
    if original:
        mail["In-Reply-To"] = original
        mail["References"] = references_for(thread.references, original)
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
            raise _failure(RECIPIENT_REFUSED, code, text) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _failure("message_refused", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise _ours("relay_login", f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:  # AUTH or STARTTLS not offered
            raise _ours("relay_login", str(exc)) from None
        except ssl.SSLError as exc:  # the relay's certificate, or no common protocol
            raise _ours("relay_tls", f"{type(exc).__name__}: {exc.reason or exc}") from None
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


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _failure(reason: str, code: int, text: bytes | str) -> SendFailed:
    """5xx is the recipient's server saying no for good; 4xx means try again later."""
    return SendFailed(reason, f"{code} {_text(text)}"[:500], permanent=code >= 500)


def _ours(reason: str, detail: str) -> SendFailed:
    """Our relay settings are wrong: retried later, and only an operator can fix it."""
    return SendFailed(reason, detail[:500], permanent=False, configuration=True)


class EmailSender:
    def __init__(self, settings: Settings, blobs: BlobStore | None = None) -> None:
        self.settings = settings
        self.sender = settings.ack_from
        self.relay = SmtpRelay(settings.smtp_relay_url.get_secret_value(), settings.smtp_hostname)
        self.blobs = blobs  # the raw e-mails, for the customer's References and subject

    def send(self, outgoing: Outgoing) -> Sent:
        settings = self.settings
        parts = blocks(
            outgoing.message,
            outgoing.template("email"),
            settings.timezone,
            settings.answer_days,
            outgoing.values,
        )
        mail = compose(outgoing, parts, self.sender, thread_of(outgoing.message, self.blobs))
        self.relay.send(mail, self.return_path(outgoing), outgoing.plan.recipient)
        return Sent(
            evidence=mail.as_bytes(),
            content_type="message/rfc822",
            provider_id=outgoing.message_id,
            delivery="sent",
        )

    def return_path(self, outgoing: Outgoing) -> str:
        """The envelope sender: ``bounces+<acknowledgement id>@...`` (VERP) when configured."""
        base = self.settings.ack_bounce_address
        if base and outgoing.ack_id:
            return verp_address(base, outgoing.ack_id)
        return self.sender
