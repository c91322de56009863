"""Administering the gateway: ``intake check-config``, ``intake migrate``, ``intake schema``.

Commands about the whole installation rather than one component: is the
configuration right and are the database, the evidence folder and the broker
reachable; bring the schema up to date; print the message contract.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from config.settings import Settings
from gateway.lib.commands import CommandError, ExitCode, failed, settings_or_exit

# A failed check: its exit code and its one line.
Problem = tuple[int, str]


@click.command("check-config")
def check_config() -> None:
    """Read the configuration, reach the database and the broker, and say what is wrong.

    Changes nothing: no migration, no folder, no exchange or queue. Each
    check prints its line; the first problem gives the exit code (78 a
    schema not at the newest revision or a folder that cannot be written,
    75 the database unreachable, 69 the broker unreachable).
    """
    settings = settings_or_exit()
    checks = (_check_database, _check_blobs, _check_broker)
    problems = [problem for check in checks if (problem := check(settings)) is not None]
    if problems:
        raise CommandError("; ".join(message for _code, message in problems), problems[0][0])


def _check_database(settings: Settings) -> Problem | None:
    from gateway.store import StoreUnavailable, inspect_schema, safe_database_url

    where = safe_database_url(settings)
    try:
        state = inspect_schema(settings)
    except StoreUnavailable as exc:
        click.echo(f"database: {where}: UNREACHABLE")
        return ExitCode.TEMPFAIL, f"database unreachable: {exc}"
    click.echo(f"database: {where}: {state.describe()}")
    return None if state.up_to_date else (ExitCode.CONFIG, f"database: {state.describe()}")


def _check_blobs(settings: Settings) -> Problem | None:
    return _check_folder("blobs", settings.blob_dir)


def _check_broker(settings: Settings) -> Problem | None:
    """Connect, declare nothing; the embedded broker is a folder, looked at only."""
    from router.broker import BrokerProbe

    if settings.uses_embedded_broker:
        return _check_folder("broker (embedded)", settings.broker_dir)
    ok, detail = BrokerProbe(settings, ttl=0).check()
    click.echo(f"broker: {detail}: {'reachable' if ok else 'UNREACHABLE'}")
    return None if ok else (ExitCode.UNAVAILABLE, "broker unreachable")


def _check_folder(name: str, folder: Path) -> Problem | None:
    """Could the gateway write in ``folder``? A missing one is made at first start, not here."""
    folder = folder.resolve()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        click.echo(f"{name}: {folder}: NOT WRITABLE ({existing})")
        return ExitCode.CONFIG, f"{name} folder {folder} cannot be written"
    state = "writable" if existing == folder else "writable (created at first start)"
    click.echo(f"{name}: {folder}: {state}")
    return None


@click.command()
@click.option(
    "--blobs",
    is_flag=True,
    help="Also move evidence stored in the old ab/cd/ folders to ab/ (once, after an upgrade).",
)
def migrate(blobs: bool) -> None:
    """Bring the database schema to the newest version."""
    from gateway.store import MigrationFailed, migrate_database, safe_database_url
    from gateway.store.blobs import BlobStore

    settings = settings_or_exit()
    try:
        migrate_database(settings)
    except MigrationFailed as exc:
        # Unreachable: worth trying again (75); anything else fails every time (70).
        raise failed(exc, f"cannot migrate the database at {safe_database_url(settings)}") from None
    click.echo("schema up to date", err=True)
    if blobs:
        moved = BlobStore(settings.blob_dir).migrate_layout()
        click.echo(f"moved {moved} blob(s) to the current layout", err=True)


@click.command()
@click.option(
    "--write",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the schema files into this folder.",
)
def schema(folder: Path | None) -> None:
    """Print (or write) the JSON Schemas of the message contract."""
    from normalizer.contract import schema_documents

    documents = schema_documents()
    if folder is None:
        click.echo(json.dumps(documents["complaint-event.v1.json"], indent=2, ensure_ascii=False))
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (folder / name).write_text(render_schema(document), encoding="utf-8")
        click.echo(f"wrote {folder / name}", err=True)


def render_schema(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
