"""E-mail normalization: raw RFC 822 bytes in, one clean ``ParsedEmail`` out.

Flow: IMAP poller / SMTP receiver -> raw evidence stored -> **normalizer.email**
-> the e-mail channel builds the ``ComplaintMessage``. Pure library: no
database, no blob store; no network either, except the DKIM key lookup
when the caller's ``AuthPolicy`` asks for it.
"""

from normalizer.email.attachments import ParsedAttachment
from normalizer.email.authentication import Authentication, AuthPolicy
from normalizer.email.autoreply import detect_auto_reply
from normalizer.email.errors import EmailError, EmailInternalError, EmailRejected
from normalizer.email.limits import EmailLimits
from normalizer.email.origin import DEFAULT_ORIGIN_RULES, classify_origin
from normalizer.email.parse import ParsedEmail, parse_email

__all__ = [
    "DEFAULT_ORIGIN_RULES",
    "AuthPolicy",
    "Authentication",
    "EmailError",
    "EmailInternalError",
    "EmailLimits",
    "EmailRejected",
    "ParsedAttachment",
    "ParsedEmail",
    "classify_origin",
    "detect_auto_reply",
    "parse_email",
]
