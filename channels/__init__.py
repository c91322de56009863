"""Channels: the ways a complaint reaches Cash Plus, one package each.

``CHANNELS`` lists them for the host (``gateway.components``), which mounts
their HTTP routes, starts their workers and adds their shell commands to
``intake``. A new channel is one package and one line here. Each line names
where the component is (imported when the table is first iterated) and the
shell commands it adds with their one-line help, so that ``intake --help``
starts without importing any channel (``tests/unit/test_cli_startup_imports.py``
keeps the help true).

Every channel package has the same parts: ``__init__`` (its component),
the protocol edge, ``intake`` (bytes + metadata -> the one ``RawInput`` and
draft -> ``channels.handoff``), ``replay`` (a quarantined input through that
same intake) and ``cli`` where it has commands. Channels never import each
other (an import-linter contract).
"""

from __future__ import annotations

from gateway.lib.component import ComponentTable, Entry

CHANNELS = ComponentTable(
    Entry("api", "channels.api", {"api-key": "Manage the API keys of partner systems."}),
    Entry(
        "smtp",
        "channels.email:SMTP",
        {
            "smtp": "The SMTP receiver (for a relaying mail server or a direct MX).",
            "import": "Turn a mailbox backlog (an export of the old inbox) into complaints.",
        },
    ),
    Entry(
        "imap",
        "channels.email:IMAP",
        {"imap": "The IMAP mailbox channel (settings: INTAKE_IMAP_*)."},
    ),
    Entry("webform", "channels.webform"),
    Entry(
        "letters",
        "channels.letters",
        {
            "letters": "Postal letters: the scanner's hot folder and backlog imports.",
            "ocr-worker": "Read letters waiting for OCR and release their complaints "
            "(Procfile: ocr).",
        },
    ),
    Entry(
        "twilio",
        "channels.twilio",
        {
            "twilio-worker": "Download call recordings and message photos; publish missed calls.",
            "twilio-prompts": (
                "List the phone line's sentences: recorded or spoken, reviewed or not."
            ),
        },
    ),
)
