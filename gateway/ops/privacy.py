"""``intake retention purge`` and ``intake personal-data export|erase`` (law 09-08).

- ``retention purge [--dry-run | --yes]``: removes what is past the retention policy
  (``INTAKE_RETENTION_*``, ``gateway.store.retention``), each removal
  recorded in the evidence log; prints progress on stderr and a line per
  kind (items, blobs, bytes) on stdout. ``--dry-run`` lists what is due
  and changes nothing: it opens the store read-only, without migrating it
  (a store behind this version is exit 78, naming ``intake migrate``).
- ``personal-data export --phone P | --email E [--out FILE]``: a zip of
  everything held on that customer (``subject.json``, ``complaints.json``,
  ``acknowledgements.json``, ``calls.json``, ``call_backs.json``, ``events.json``,
  ``quarantine.json``,
  ``blobs/<sha256>``, ``README.txt``).
- ``personal-data erase --phone P | --email E [--yes] [--force]``: removes
  that customer's content and contact fields, keeps the regulatory record;
  refuses (exit 1, naming them) while a complaint is still open, unless
  ``--force``.

Exit codes (``ExitCode``): 0 done, 1 refused or nothing found, 64 usage
(a phone number or e-mail that is not one), 75 the store is unavailable,
78 a dry run on a store whose schema is not this version's.
Logs and messages show the phone number and e-mail masked.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.lib.commands import CommandError, ExitCode, open_services
from gateway.lib.logs import mask_personal_data
from gateway.store.personal_data import Holdings, Subject
from gateway.store.retention import KINDS, Policy
from normalizer.contact import InvalidContact, check_email, to_e164

F = TypeVar("F", bound=Callable[..., Any])


@click.group("retention")
def retention_group() -> None:
    """The retention policy (law 09-08): remove what is past it."""


@retention_group.command("purge")
@click.option("--dry-run", is_flag=True, help="List what is due, per kind; change nothing.")
@click.option("--yes", is_flag=True, help="Purge for real (the removal cannot be undone).")
def retention_purge(dry_run: bool, yes: bool) -> None:
    """Remove blobs and personal content past the policy, recorded in the evidence log."""
    if not dry_run and not yes:
        raise click.UsageError("a purge cannot be undone: run it with --yes (or --dry-run first)")
    # A dry run reads only: no migration, no file, every write refused by the database.
    with open_services(read_only=dry_run) as services:
        retention = services.store.retention(Policy.from_settings(services.settings))
        due, kept_open = retention.due()
        if dry_run:
            for item in due:
                click.echo(
                    f"due\t{item.kind}\t{item.reference or item.item_id}\t"
                    f"since {item.clock.date().isoformat()}"
                )
            counts = {kind: sum(1 for item in due if item.kind == kind) for kind in KINDS}
            for kind in KINDS:
                click.echo(f"{kind}\t{counts[kind]} item(s) due")
            click.echo(
                f"{len(due)} item(s) due, {kept_open} complaint(s) kept open; dry run", err=True
            )
            return
        summary = retention.purge(due, progress=_progress)
    for kind in KINDS:
        figures = summary.kinds[kind]
        click.echo(
            f"{kind}\t{figures.items} item(s)\t{figures.blobs} blob(s)\t{figures.bytes} bytes"
        )
    click.echo(
        f"{len(due)} item(s) purged, {summary.files_deleted} file(s) deleted, "
        f"{kept_open} complaint(s) kept open",
        err=True,
    )


def _progress(done: int, total: int) -> None:
    if done == total or done % 100 == 0:
        click.echo(f"{done}/{total} purged", err=True)


@click.group("personal-data")
def personal_data_group() -> None:
    """A customer's access (export) and erasure requests, by phone or e-mail."""


def _subject(phone: str | None, email: str | None) -> Subject:
    if (phone is None) == (email is None):
        raise CommandError("give one of --phone or --email", ExitCode.USAGE)
    try:
        if phone is not None:
            return Subject(phone=to_e164(phone))
        return Subject(email=check_email(email or "").lower())
    except InvalidContact as exc:
        raise CommandError(f"--{exc.field}: {exc}", ExitCode.USAGE) from None


_WHO = (
    click.option("--phone", help="The customer's phone number (any form; read as E.164, +212)."),
    click.option("--email", help="The customer's e-mail address (compared lower-case)."),
)


def _who(function: F) -> F:
    for option in reversed(_WHO):
        function = option(function)
    return function


@personal_data_group.command("export")
@_who
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip to write (default: personal-data-<date>.zip in the current folder).",
)
def personal_data_export(phone: str | None, email: str | None, out: Path | None) -> None:
    """Everything held on the customer, as a zip of JSON documents and the blob files."""
    subject = _subject(phone, email)
    target = out or Path(f"personal-data-{datetime.now(UTC).date().isoformat()}.zip")
    with open_services() as services:
        holdings = services.store.personal_data.find(subject)
        if not (holdings.any() or holdings.acknowledgements):
            raise CommandError(
                f"nothing held on {mask_personal_data(subject.describe())}", ExitCode.FAILED
            )
        blobs = {
            digest: (role, services.store.personal_data.blob(digest))
            for digest, role in holdings.blobs().items()
        }
    _write_zip(target, holdings, blobs)
    click.echo(str(target))
    click.echo(
        f"{len(holdings.complaints)} complaint(s), {len(holdings.calls)} call(s), "
        f"{sum(1 for _r, data in blobs.values() if data is not None)} file(s) written",
        err=True,
    )


def _write_zip(
    target: Path, holdings: Holdings, blobs: dict[str, tuple[str, bytes | None]]
) -> None:
    def document(value: object) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)

    subject = {
        "phone": holdings.subject.phone,
        "email": holdings.subject.email,
        "exported_at": datetime.now(UTC).isoformat(),
        "controller": "Cash Plus, Service Réclamations (law 09-08)",
    }
    complaints = [
        {
            "reference": held.reference,
            "received_at": held.received_at.isoformat(),
            "answer_due_at": held.answer_due_at.isoformat(),
            "status": held.status or "received",
            "content_removed": held.erased,
            "complaint": held.message,
            "evidence": held.evidence,
        }
        for held in holdings.complaints
    ]
    index = [
        {"sha256": digest, "what": role, "file": f"blobs/{digest}" if data is not None else None}
        for digest, (role, data) in blobs.items()
    ]
    temporary = target.with_name(target.name + ".part")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", _README)
        archive.writestr("subject.json", document(subject))
        archive.writestr("complaints.json", document(complaints))
        archive.writestr("acknowledgements.json", document(holdings.acknowledgements))
        archive.writestr("calls.json", document(holdings.calls))
        archive.writestr("call_backs.json", document(holdings.call_backs))
        archive.writestr("events.json", document(holdings.events))
        archive.writestr("quarantine.json", document(holdings.quarantined))
        archive.writestr("blobs.json", document(index))
        for digest, (_role, data) in blobs.items():
            if data is not None:
                archive.writestr(f"blobs/{digest}", data)
    temporary.replace(target)


_README = """What Cash Plus holds on you (law 09-08, right of access)

subject.json           who this export is about, and when it was made
complaints.json        each complaint: reference, dates, status, the complaint as recorded
                       (name, contact, text, attachments) and its raw evidence's description
acknowledgements.json  the acknowledgements of receipt sent, and to which address
calls.json             calls received from your number
call_backs.json        calls of yours we were to return, and when we called you back
events.json            other records naming you: missed calls, automatic replies
quarantine.json        messages received that could not be read as a complaint (refused or
                       waiting to be read again) and that name you
blobs.json             every file (raw e-mail, form, recording, scan, attachment, letter,
                       quarantined message)
                       with its sha256; "file" is null when it was already removed
blobs/<sha256>         the files themselves, exactly as received
"""


@personal_data_group.command("erase")
@_who
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force",
    is_flag=True,
    help="Erase even complaints still open (within their answer period, or being handled).",
)
def personal_data_erase(phone: str | None, email: str | None, yes: bool, force: bool) -> None:
    """Remove the customer's content and contact fields; keep references, dates, hashes."""
    subject = _subject(phone, email)
    masked = mask_personal_data(subject.describe())
    with open_services() as services:
        data = services.store.personal_data
        holdings = data.find(subject)
        if not holdings.any():
            raise CommandError(f"nothing held on {masked}", ExitCode.FAILED)
        now = datetime.now(UTC)
        still_open = [
            h.reference for h in holdings.complaints if h.still_open(now) and not h.erased
        ]
        if still_open and not force:
            raise CommandError(
                f"complaint(s) still open, within their answer period or being handled: "
                f"{', '.join(still_open)}; answer them first, or erase with --force",
                ExitCode.FAILED,
            )
        if not yes:
            click.confirm(
                f"erase the content of {len(holdings.complaints)} complaint(s) of {masked}?",
                abort=True,
                err=True,
            )
        erased = data.erase(holdings)
    for reference in erased.references:
        click.echo(f"erased\t{reference}")
    click.echo(
        f"{len(erased.references)} complaint(s), {erased.events} event(s) and "
        f"{erased.quarantined} quarantined input(s) erased, "
        f"{erased.blobs} blob(s) recorded as "
        f"removed, {erased.files_deleted} file(s) deleted"
        + (f"; {len(still_open)} still open, erased with --force" if still_open else ""),
        err=True,
    )


COMMANDS: tuple[click.Command, ...] = (retention_group, personal_data_group)
