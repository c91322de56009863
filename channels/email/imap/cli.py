"""``intake imap poll [--once]`` and ``intake imap backfill``: the IMAP channel from a shell.

The Procfile's ``imap`` process runs ``intake imap poll``. Exit codes
(``gateway.lib.commands.ExitCode``): 69 the IMAP server unreachable, 75 the store unavailable,
78 configuration (no host, login refused), 1 some messages failed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import click

from gateway.lib.commands import (
    CommandError,
    ExitCode,
    failed,
    freeze_heap,
    open_services,
    publishing,
    run_until_signal,
)
from normalizer.email import EmailInternalError


@click.group("imap")
def imap_group() -> None:
    """The IMAP mailbox channel (settings: INTAKE_IMAP_*)."""


@imap_group.command()
@click.option("--once", is_flag=True, help="Process what the inbox holds now, then exit.")
@click.option(
    "--publish/--no-publish",
    default=True,
    help="With --once: publish the new complaints to the broker before exiting (default), "
    "or leave them in the outbox for `intake relay`.",
)
def poll(once: bool, publish: bool) -> None:
    """Capture every message of the inbox, then move it to the processed folder; keep watching.

    With --once, the captured mail is also normalized (complaints recorded) before exiting.
    """
    from channels.email.imap.poller import poll_once, run_poller

    with open_services() as services:
        _require_host(services.settings)
        if not once:
            from normalizer.language import warm_up_in_background

            warm_up_in_background(then=freeze_heap)
            run_until_signal(lambda stop: run_poller(services, stop))
            return
        with publishing(services, publish):
            with _imap_errors(services.settings):
                tally = poll_once(services)
            click.echo(f"imap: {tally.describe_captures()}", err=True)
            from channels.email.staged import drain_mail_captures

            stats = drain_mail_captures(services)
            click.echo(
                f"imap: {stats.finished} normalized, {stats.quarantined} quarantined", err=True
            )
    if tally.failed:
        raise CommandError(
            f"{tally.failed} message(s) failed and stay in the inbox", ExitCode.FAILED
        )


@imap_group.command()
@click.option(
    "--since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First day (YYYY-MM-DD) of the messages' IMAP internal date.",
)
@click.option(
    "--before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Stop before this day (YYYY-MM-DD); default: up to now.",
)
@click.option("--folder", help="Folder to read (default INTAKE_IMAP_FOLDER), e.g. Processed.")
def backfill(since: datetime, before: datetime | None, folder: str | None) -> None:
    """Capture again the messages received in a date range, then normalize them.

    Moves and flags nothing; safe to repeat: a mail captured or recorded before is found.
    """
    from tqdm import tqdm

    from channels.email.imap.backfill import backfill as run_backfill
    from channels.email.imap.backfill import open_folder
    from channels.email.imap.connection import close_quietly, open_session

    with open_services() as services:
        settings = services.settings
        _require_host(settings)
        folder = folder or settings.imap_folder
        until = _day(before)
        with _imap_errors(settings):
            client = open_session(settings)
            try:
                if not client.folder_exists(folder):
                    raise CommandError(f"no folder {folder!r} on the IMAP server", ExitCode.USAGE)
                mailbox = open_folder(client, folder)
                uids = mailbox.uids_between(since.date(), until)
                with tqdm(total=len(uids), unit="msg", desc=folder, file=sys.stderr) as bar:
                    tally = run_backfill(services, mailbox, uids, bar.update)
            finally:
                close_quietly(client)
    click.echo(f"imap backfill of {folder}: {tally.describe()}", err=True)
    if tally.failed:
        raise CommandError(f"{tally.failed} message(s) failed; run it again later", ExitCode.FAILED)


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.date()


def _require_host(settings: Any) -> None:

    if not settings.imap_host:
        raise CommandError("INTAKE_IMAP_HOST is not set", ExitCode.CONFIG)


@contextmanager
def _imap_errors(settings: Any) -> Iterator[None]:
    """Map IMAP-side failures to exit codes (store failures are mapped by ``open_services``)."""
    from channels.email.imap.connection import NETWORK_ERRORS, ImapConfigError

    where = f"{settings.imap_host}:{settings.imap_port}"
    try:
        yield
    except ImapConfigError as exc:
        raise CommandError(f"IMAP {where}: {exc}", ExitCode.CONFIG) from None
    except EmailInternalError as exc:
        raise failed(exc, "e-mail normalizer unavailable") from None
    except NETWORK_ERRORS as exc:
        raise CommandError(
            f"IMAP server {where} unavailable: {type(exc).__name__}: {exc}", ExitCode.UNAVAILABLE
        ) from None
