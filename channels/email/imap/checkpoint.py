"""Where to start in a mailbox: the stored (UIDVALIDITY, UID) checkpoint, checked on select.

IMAP inbox -> poller selects the folder -> **checkpoint** -> searches, fetches.
The rows live in ``gateway.store.checkpoints``; this module decides what a
checkpoint means for a session that just selected the folder.
"""

from __future__ import annotations

import logging

from channels.email.imap.connection import MailboxName
from gateway.store.checkpoints import Checkpoint, ImapCheckpoints

log = logging.getLogger("intake.imap")


def start_checkpoint(
    checkpoints: ImapCheckpoints, mailbox: MailboxName, uidvalidity: int
) -> Checkpoint:
    """The checkpoint to continue from, reset when the server renumbered the folder.

    A new UIDVALIDITY means every UID we recorded now names nothing (or
    another message): start over from UID 0. Mails seen before come back
    with new UIDs; the e-mail dedup (Message-ID + content hash) finds their
    complaints instead of making new ones.
    """
    current = checkpoints.get(mailbox.key)
    if current is None:
        log.info("first session on folder %s (UIDVALIDITY %s)", mailbox.folder, uidvalidity)
        return checkpoints.reset(mailbox.key, uidvalidity)
    if current.uidvalidity != uidvalidity:
        log.warning(
            "UIDVALIDITY of folder %s changed from %s to %s: its UIDs were renumbered; "
            "reading it again from the start (dedup keeps complaints single)",
            mailbox.folder,
            current.uidvalidity,
            uidvalidity,
        )
        return checkpoints.reset(mailbox.key, uidvalidity)
    return current
