"""Shell commands of the e-mail channel.

- ``intake smtp serve``: the SMTP receiver (Procfile process ``smtp``).
- ``intake imap poll|backfill``: the IMAP mailbox (``channels.email.imap.cli``).
- ``intake import mbox|maildir PATH``: a mailbox backlog becomes complaints,
  idempotently, with a progress bar on stderr and a summary on stdout.

Exit codes (``gateway.lib.commands.ExitCode``): 65 malformed input, 69
cannot listen, 75 store or normalizer unavailable, 78 configuration. Errors
are one line on stderr, never a traceback. The servers and the backlog
reader are imported inside their commands: ``intake smtp serve`` loads no
IMAP code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from channels.email.imap.cli import imap_group
from gateway.lib.commands import (
    CommandError,
    ExitCode,
    failed,
    freeze_heap,
    open_services,
    run_until_signal,
)
from normalizer.email import EmailInternalError


# -- intake smtp serve ------------------------------------------------------------
@click.group("smtp")
def smtp_group() -> None:
    """The SMTP receiver (for a relaying mail server or a direct MX)."""


@smtp_group.command("serve")
def smtp_serve() -> None:
    """Receive mail on INTAKE_SMTP_HOST:INTAKE_SMTP_PORT until SIGINT or SIGTERM."""
    from channels.email.smtp import SmtpServer, run_server
    from channels.email.smtp_policy import SmtpConfigError

    with open_services() as services:
        settings = services.settings
        try:
            server = SmtpServer(services)
        except SmtpConfigError as exc:
            raise CommandError(f"configuration error: {exc}", ExitCode.CONFIG) from None
        try:
            # The edge parses nothing (no language model to load); once it listens,
            # what it holds from its start is left out of the collector's passes.
            run_until_signal(lambda stop: run_server(server, stop, ready=freeze_heap))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {settings.smtp_host}:{settings.smtp_port}: "
                f"{exc.strerror or exc}",
                ExitCode.UNAVAILABLE,
            ) from None


# -- intake import mbox|maildir PATH -------------------------------------------------
@click.group("import")
def import_group() -> None:
    """Turn a mailbox backlog (an export of the old inbox) into complaints.

    Safe to run again: mail already recorded is counted as repeated, not
    recorded twice. Received time: see ``channels/email/backlog.py``.
    """


@import_group.command("mbox")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_mbox(path: Path) -> None:
    """Import every message of the mbox file PATH."""
    _import("mbox", path)


@import_group.command("maildir")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_maildir(path: Path) -> None:
    """Import every message of the Maildir folder PATH (its cur/ and new/)."""
    _import("maildir", path)


def _import(kind: str, path: Path) -> None:
    import mailbox

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from channels.email.backlog import ImportSummary, import_backlog, open_backlog

    with open_services() as services:
        try:
            backlog = open_backlog(kind, path, ZoneInfo(services.settings.timezone))
        except (mailbox.Error, OSError) as exc:
            raise CommandError(f"{path}: not a readable {kind}: {exc}", ExitCode.DATAERR) from None
        summary = ImportSummary()
        bar = tqdm(total=backlog.count, unit="msg", desc=path.name, file=sys.stderr)
        try:
            with bar, logging_redirect_tqdm():
                import_backlog(services, backlog, summary, bar.update)
        except EmailInternalError as exc:
            click.echo(f"stopped after {summary.line()}", err=True)
            raise failed(exc, "normalizer unavailable") from None
        except Exception:
            click.echo(f"stopped after {summary.line()}", err=True)
            raise
    click.echo(summary.line())


SMTP_COMMANDS: tuple[click.Command, ...] = (smtp_group, import_group)
IMAP_COMMANDS: tuple[click.Command, ...] = (imap_group,)
