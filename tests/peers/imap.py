"""Helpers for the IMAP channel's tests: mails to append, settings, a poller thread.

The server itself is ``tests.peers.dovecot``; this module builds what the
tests put in it and reads what the poller left in the store.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from channels.email.imap.outcomes import Tally
from channels.email.imap.poller import poll_once, run_poller
from channels.email.staged import drain_mail_captures
from config.settings import Settings
from gateway.lib.services import Services, build_services
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow
from normalizer.contract import ComplaintMessage
from tests.peers.dovecot import ImapAccount
from tests.peers.runners import running_normalizer

# Casablanca is UTC+1 most of the year: a receipt time with an offset.
ARRIVED = datetime(2025, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=1)))
NOT_A_MAIL = b"%PDF-1.7 this upload is not an e-mail at all\r\n\r\n\x00\x01\x02"


def complaint_mail(number: int, *, auto_reply: bool = False) -> bytes:
    """A customer's complaint, unique by ``number`` (Message-ID, subject, text)."""
    mail = EmailMessage()
    mail["From"] = f"Client {number} <client{number}@example.ma>"
    mail["To"] = "contact@cashplus.ma"
    mail["Subject"] = f"Transfert {number} non reçu"
    mail["Date"] = format_datetime(ARRIVED - timedelta(minutes=number))
    mail["Message-ID"] = make_msgid(f"c{number}", domain="example.ma")
    if auto_reply:
        mail["Auto-Submitted"] = "auto-replied"
        mail.replace_header("Subject", "Réponse automatique : absent du bureau")
    mail.set_content(
        f"Bonjour, mon transfert numéro {number} de 1500 DH envoyé à Casablanca "
        "n'est toujours pas arrivé. Merci de vérifier."
    )
    return mail.as_bytes()


def imap_settings(base: Settings, account: ImapAccount, **overrides: object) -> Settings:
    """``base`` pointed at ``account`` over plain IMAP, with short timeouts."""
    values: dict[str, object] = {
        "imap_host": account.host,
        "imap_port": account.port,
        "imap_user": account.user,
        # model_copy does not validate: the secret must already be a SecretStr.
        "imap_password": SecretStr(account.password),
        "imap_tls": "off",
        "imap_timeout": 5.0,
        **overrides,
    }
    return base.model_copy(update=values)


def complaints(services: Services) -> list[ComplaintMessage]:
    with reading(services.store.engine) as session:
        rows = session.scalars(select(ComplaintRow.message).order_by(ComplaintRow.received_at))
        return [ComplaintMessage.model_validate_json(row) for row in rows]


def complaint_count(database: Path) -> int:
    """Complaints in a SQLite store another process writes (read-only, no migration)."""
    return _count(database, "complaints")


def capture_count(database: Path) -> int:
    """Captures (``intake`` rows) in a SQLite store another process writes."""
    return _count(database, "intake")


def captures_waiting(database: Path) -> int:
    """Captures not normalized yet in a SQLite store another process writes."""
    return _count(database, "intake WHERE state = 'captured'")


def _count(database: Path, table: str) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        try:
            (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return 0
    return int(count)


def poll_and_normalize(services: Services) -> Tally:
    """``poll_once`` (the captures), then what it captured normalized, as ``--once`` does."""
    tally = poll_once(services)
    drain_mail_captures(services)
    return tally


@dataclass
class RunningPoller:
    services: Services
    stop: threading.Event
    thread: threading.Thread


@contextmanager
def running_poller(settings: Settings) -> Iterator[RunningPoller]:
    """The channel worker in a thread, with a runner, as ``intake run`` starts them."""
    services = build_services(settings)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_poller, args=(services, stop), name="imap-test", daemon=True
    )
    thread.start()
    try:
        with running_normalizer(services):
            yield RunningPoller(services, stop, thread)
    finally:
        stop.set()
        thread.join(15)
        services.close()
    assert not thread.is_alive(), "the poller did not stop within 15 s"
