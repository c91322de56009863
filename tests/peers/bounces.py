"""Delivery status notifications (RFC 3464) as receiving servers write them, for tests.

``dsn`` writes the report a Postfix server sends when it cannot deliver
one of our messages: a ``multipart/report; report-type=delivery-status``
with a text part, the ``message/delivery-status`` part (per-message
fields, then one block per recipient), and the returned message
(``message/rfc822``) or only its headers (``text/rfc822-headers``, as
Exchange and Gmail do). Written as bytes on purpose: the code under test
parses them with the stdlib, the test must not build them with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime


def dsn(
    *,
    to: str,
    original_message_id: str,
    recipient: str = "client@example.org",
    action: str = "failed",
    status: str = "5.1.1",
    returned: str = "headers",
    report_type: str = "delivery-status",
) -> bytes:
    """The report of ``recipient`` for the message ``original_message_id``, addressed to ``to``."""
    boundary = "B0UNDARY.1733500000/mx.example.org"
    diagnostic = (
        f"smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
        if action == "failed"
        else "smtp; 451 4.4.1 Connection timed out"
    )
    original = (
        "From: Cash Plus <contact@cashplus.ma>\r\n"
        f"To: {recipient}\r\n"
        "Subject: Votre reclamation\r\n"
        f"Message-ID: {original_message_id}\r\n"
    )
    if returned == "message":
        returned_part = "Content-Type: message/rfc822\r\n\r\n" + original + "\r\nBonjour,\r\n"
    else:
        returned_part = "Content-Type: text/rfc822-headers\r\n\r\n" + original
    text = (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        "Message-ID: <20261206.bounce.4711@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type={report_type};\r\n"
        f'\tboundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-encapsulated message.\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.example.org.\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "X-Postfix-Queue-ID: 4ABC123\r\n"
        f"Arrival-Date: {format_datetime(datetime.now(UTC))}\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mail.example.org\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Undelivered Message\r\n" + returned_part + "\r\n"
        f"--{boundary}--\r\n"
    )
    return text.encode("ascii")
