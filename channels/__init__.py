"""Channel adapters: one module per way a complaint can reach Cash Plus.

``CHANNELS`` is the table the gateway reads to mount HTTP routes and start
workers; a new channel is one module and one line here. Each line names the
module holding the adapter (imported when the table is first iterated) and
the shell commands it adds to ``intake`` with their one-line help, so that
``intake --help`` and the commands that need no channel start without
importing any (``tests/unit/test_groupcommit_cli_startup.py`` keeps the help true).
"""

from __future__ import annotations

from channels.base import AdapterTable, ChannelEntry

CHANNELS = AdapterTable(
    ChannelEntry("api", "channels.api"),
    ChannelEntry(
        "smtp",
        "channels.smtp",
        {
            "smtp": "The SMTP receiver (for a relaying mail server or a direct MX).",
            "normalize": "Print the message FILE would become: an .eml / RFC 822 file (or - "
            "for stdin), or a scanned letter (PDF, TIFF, JPEG, PNG: OCR runs).",
            "import": "Turn a mailbox backlog (an export of the old inbox) into complaints.",
        },
    ),
    ChannelEntry(
        "imap", "channels.imap", {"imap": "The IMAP mailbox channel (settings: INTAKE_IMAP_*)."}
    ),
    ChannelEntry("webform", "channels.webform"),
    ChannelEntry(
        "letters",
        "channels.letters.adapter",
        {
            "letters": "Postal letters: the scanner's hot folder and backlog imports.",
            "ocr-worker": "Read letters waiting for OCR and release their complaints "
            "(Procfile: ocr).",
        },
    ),
    ChannelEntry(
        "staff",
        "gateway.staff.adapter",
        {"users": "Manage staff accounts (the mailroom upload page, operator pages)."},
    ),
    ChannelEntry(
        "twilio",
        "channels.twilio",
        {"twilio-worker": "Download call recordings and message photos; publish missed calls."},
    ),
    ChannelEntry(
        "acks",
        "channels.acks",
        {
            "ack-worker": "Acknowledge complaints from the complaints.acks queue until SIGINT "
            "or SIGTERM.",
            "ack": "Acknowledgements of receipt (accusés de réception).",
        },
    ),
    ChannelEntry(
        "ops",
        "gateway.ops.adapter",
        {
            "quarantine": "Inputs refused at a channel's edge (kept with the reason), and their "
            "replay.",
            "dead-letters": "The complaints.dead queue: messages a consumer rejected, and their "
            "replay.",
        },
    ),
)
