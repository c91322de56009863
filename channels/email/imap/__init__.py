"""The IMAP channel: read the complaints mailbox, commit each mail, then move it.

IMAP inbox -> **channels.email.imap** (poller: fetch ``BODY.PEEK[]`` + INTERNALDATE)
-> ``channels.email.intake.ingest_mail`` (evidence + complaint + outbox, one commit)
-> MOVE to the processed folder (or the quarantine folder) -> checkpoint.

Modules: ``connection`` (TLS, login, XOAUTH2), ``mailbox`` (IMAP commands on
a folder), ``sync`` (one pass over the inbox), ``waiting`` (IDLE or poll),
``poller`` (the long-running loop with backoff), ``backfill`` and ``cli``.
The component (worker, commands, replay) is ``channels.email.IMAP``.
"""
