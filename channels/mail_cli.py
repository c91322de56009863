"""Shell commands of the e-mail channel, added to ``intake`` through the SMTP adapter.

- ``intake smtp serve``: the SMTP receiver (Procfile process ``smtp``).
- ``intake normalize FILE``: the ``ComplaintMessage`` a raw file would become,
  printed as JSON; nothing is stored or published.
- ``intake import mbox|maildir PATH``: a mailbox backlog becomes complaints,
  idempotently, with a progress bar on stderr and a summary on stdout.

Exit codes as in ``gateway.cli`` (sysexits): 65 malformed input, 66 an input
file that cannot be read, 69 cannot listen, 75 store or normalizer
unavailable, 78 configuration. Errors are one line on stderr, never a
traceback. ``gateway.cli`` imports the channels table, so it is imported
here only inside the commands.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from channels.mail import (
    AUTOREPLY_KIND,
    RAW_CONTENT_TYPE,
    MailArrival,
    build_draft,
    parse_arrival,
)
from channels.mail_import import choose_received_at, header_times
from config.settings import Settings
from gateway.store.blobs import SCHEME
from normalizer.assemble import assemble_message
from normalizer.contract import Attachment, Channel, ComplaintMessage, Evidence, IntakeEvent
from normalizer.draft import AttachmentDraft
from normalizer.email import EmailInternalError, EmailRejected
from normalizer.ocr import OcrFailed, ScanRejected
from normalizer.ocr.checks import ACCEPTED as SCAN_TYPES
from normalizer.ocr.checks import sniff_type
from normalizer.pipeline import PipelineContext, normalize
from normalizer.reference import new_reference

EX_NOINPUT = 66


# -- intake smtp serve ------------------------------------------------------------
@click.group("smtp")
def smtp_group() -> None:
    """The SMTP receiver (for a relaying mail server or a direct MX)."""


@smtp_group.command("serve")
def smtp_serve() -> None:
    """Receive mail on INTAKE_SMTP_HOST:INTAKE_SMTP_PORT until SIGINT or SIGTERM."""
    from channels.smtp import SmtpServer, run_server
    from channels.smtp_policy import SmtpConfigError
    from gateway.cli import (
        EX_CONFIG,
        EX_UNAVAILABLE,
        CommandError,
        _run_until_signal,
        _services,
    )
    from normalizer.language import warm_up_in_background

    with _services() as services:
        settings = services.settings
        warm_up_in_background()
        try:
            server = SmtpServer(services)
        except SmtpConfigError as exc:
            raise CommandError(f"configuration error: {exc}", EX_CONFIG) from None
        try:
            _run_until_signal(lambda stop: run_server(server, stop))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {settings.smtp_host}:{settings.smtp_port}: "
                f"{exc.strerror or exc}",
                EX_UNAVAILABLE,
            ) from None


# -- intake normalize FILE -------------------------------------------------------------
@click.command("normalize")
@click.argument("file", metavar="FILE")
def normalize_file(file: str) -> None:
    """Print the message FILE would become: an .eml / RFC 822 file (or - for
    stdin), or a scanned letter (PDF, TIFF, JPEG, PNG: OCR runs).

    Nothing is stored or published: the id and reference are drawn for this
    preview only, and the evidence points at the blob the raw bytes would be.
    """
    from gateway.cli import EX_DATAERR, EX_TEMPFAIL, CommandError, _settings

    raw = _read_input(file)
    settings = _settings()
    kind = sniff_type(raw)
    if kind in SCAN_TYPES:
        if file != "-":
            _normalize_scan(settings, Path(file))
            return
        # OCR reads files: a scan piped in is written to a private temp file first.
        with tempfile.TemporaryDirectory(prefix="intake-normalize-") as folder:
            path = Path(folder) / f"stdin.{SCAN_TYPES[kind][0]}"
            path.write_bytes(raw)
            _normalize_scan(settings, path)
        return
    received, date = header_times(raw) if raw.strip() else (None, None)
    received_at, source = choose_received_at(
        [("Received header", received), ("Date header", date)], datetime.now(UTC), "current time"
    )
    try:
        preview = preview_email(settings, raw, received_at)
    except EmailRejected as exc:
        raise CommandError(f"{file}: rejected ({exc.code}): {exc.reason}", EX_DATAERR) from None
    except EmailInternalError as exc:
        raise CommandError(f"{file}: {exc}", EX_TEMPFAIL) from None
    click.echo(preview.model_dump_json(indent=2))
    if isinstance(preview, ComplaintMessage):
        note = f"id and reference {preview.reference} drawn for this preview only"
    else:
        note = "an auto-reply: it would be stored as an event, not a complaint"
    click.echo(f"note: not stored; {note}; received_at from the {source}", err=True)


def _normalize_scan(settings: Settings, path: Path) -> None:
    from channels.letters.preview import normalize_scan_file
    from gateway.cli import EX_DATAERR, EX_TEMPFAIL, CommandError

    try:
        preview = normalize_scan_file(settings, path)
    except ScanRejected as exc:
        raise CommandError(f"{path}: rejected ({exc.code}): {exc}", EX_DATAERR) from None
    except OcrFailed as exc:
        raise CommandError(f"{path}: OCR failed: {exc}", EX_TEMPFAIL) from None
    click.echo(preview.model_dump_json(indent=2))
    click.echo(
        f"note: not stored; id and reference {preview.reference} drawn for this preview only; "
        "received_at is now",
        err=True,
    )


def _read_input(file: str) -> bytes:
    from gateway.cli import CommandError

    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CommandError(f"{file}: cannot read: {exc.strerror or exc}", EX_NOINPUT) from None


def preview_email(
    settings: Settings, raw: bytes, received_at: datetime
) -> ComplaintMessage | IntakeEvent:
    """What ``ingest_mail`` would record for ``raw``, built without the store.

    Raises ``EmailRejected`` (malformed, over a limit) like ``ingest_mail``.
    """
    parsed = parse_arrival(settings, MailArrival(raw=raw, received_at=received_at))
    digest = hashlib.sha256(raw).hexdigest()
    evidence = Evidence(
        stored_at=SCHEME + digest,
        sha256=digest,
        size=len(raw),
        content_type=RAW_CONTENT_TYPE,
        message_id=parsed.message_id,
    )
    if parsed.auto_reply:
        return IntakeEvent(
            id=str(uuid.uuid4()),
            kind=AUTOREPLY_KIND,
            channel=Channel.EMAIL,
            received_at=received_at,
            details={"reason": parsed.auto_reply, "subject": parsed.subject},
            evidence=evidence,
        )
    context = PipelineContext(settings.timezone, settings.ack_days, settings.answer_days)
    draft = normalize(build_draft(parsed, received_at), context)
    return assemble_message(
        draft,
        complaint_id=str(uuid.uuid4()),
        reference=new_reference(),
        evidence=evidence,
        attachments=[_unstored_attachment(item) for item in draft.attachments],
        processed_at=datetime.now(UTC),
    )


def _unstored_attachment(item: AttachmentDraft) -> Attachment:
    """The attachment as the store would describe it, pointing at the blob it would be."""
    digest = hashlib.sha256(item.data).hexdigest()
    return Attachment(
        name=item.name,
        content_type=item.content_type or "application/octet-stream",
        declared_type=item.declared_type,
        size=len(item.data),
        sha256=digest,
        stored_at=SCHEME + digest,
        ocr_text=item.ocr_text,
    )


# -- intake import mbox|maildir PATH -------------------------------------------------
@click.group("import")
def import_group() -> None:
    """Turn a mailbox backlog (an export of the old inbox) into complaints.

    Safe to run again: mail already recorded is counted as repeated, not
    recorded twice. Received time: see ``channels/mail_import.py``.
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

    from channels.mail_import import ImportSummary, import_backlog, open_backlog
    from gateway.cli import EX_DATAERR, EX_TEMPFAIL, CommandError, _services

    with _services() as services:
        try:
            backlog = open_backlog(kind, path, ZoneInfo(services.settings.timezone))
        except (mailbox.Error, OSError) as exc:
            raise CommandError(f"{path}: not a readable {kind}: {exc}", EX_DATAERR) from None
        summary = ImportSummary()
        bar = tqdm(total=backlog.count, unit="msg", desc=path.name, file=sys.stderr)
        try:
            with bar, logging_redirect_tqdm():
                import_backlog(services, backlog, summary, bar.update)
        except EmailInternalError as exc:
            click.echo(f"stopped after {summary.line()}", err=True)
            raise CommandError(f"normalizer unavailable: {exc}", EX_TEMPFAIL) from None
        except Exception:
            click.echo(f"stopped after {summary.line()}", err=True)
            raise
    click.echo(summary.line())


COMMANDS: tuple[click.Command, ...] = (smtp_group, normalize_file, import_group)
