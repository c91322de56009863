"""The ``intake`` command: run the gateway's processes and operate it from a shell.

Exit codes follow sysexits: 0 success, 1 a check or part of the work failed
or a wait timed out, 64 usage, 65 bad input data, 69 a peer (broker, IMAP
server) unavailable, 70 a migration the database refused (a broken
migration, a file that is not a database: running it again will not help),
75 temporary failure (the database unreachable or refusing writes), 78
configuration error: a wrong setting, or a target not prepared for this
version (a database ``intake migrate`` has not brought to the newest schema,
a data folder that cannot be written). Errors are one line on stderr.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import click

from config.settings import ConfigError, Settings, get_settings

EX_FAILED = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78
T = TypeVar("T")


class CommandError(click.ClickException):
    """One line on stderr and a meaningful exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it per class


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise CommandError(f"configuration error: {exc}", EX_CONFIG) from None


@contextmanager
def _services() -> Iterator[Any]:
    from gateway.logs import setup_logging
    from gateway.services import build_services
    from gateway.store import StoreUnavailable

    settings = _settings()
    setup_logging(settings.log_level)
    try:
        services = build_services(settings)
    except Exception as exc:
        raise CommandError(
            f"cannot open the store at {_safe_db(settings)}: {_one_line(exc)}", EX_TEMPFAIL
        ) from None
    try:
        yield services
    except StoreUnavailable as exc:
        raise CommandError(f"store unavailable: {exc}", EX_TEMPFAIL) from None
    finally:
        services.close()


def _safe_db(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def _one_line(exc: BaseException) -> str:
    """The error's first line: SQLAlchemy's add the statement and a link on lines of their own."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


# Language tools, imported only when run (and absent if their packages are).
_LANGUAGE_COMMANDS: dict[str, tuple[str, str, str]] = {
    "detect-language": (
        "normalizer.langid.cli",
        "detect_language",
        "Print the language of TEXT as JSON; without TEXT, one JSON line per stdin line.",
    ),
    "langid-eval": (
        "normalizer.langid.cli",
        "langid_eval",
        "Accuracy per label, macro accuracy, confusions and speed on FILE, next to langdetect.",
    ),
}


def lazy_command_help() -> dict[str, str]:
    """Commands ``intake`` imports on use, with their one-line help."""
    from channels import CHANNELS

    return {
        **CHANNELS.command_help(),
        **{name: entry[2] for name, entry in _LANGUAGE_COMMANDS.items()},
    }


def _lazy_command(name: str) -> click.Command | None:
    if name in _LANGUAGE_COMMANDS:
        import importlib

        module, attribute, _help = _LANGUAGE_COMMANDS[name]
        try:
            command: click.Command = getattr(importlib.import_module(module), attribute)
        except ImportError:
            return None
        return command
    from channels import CHANNELS

    return CHANNELS.command(name)


class IntakeGroup(click.Group):
    """``intake``: its own commands, plus the channels' and the language tools', imported on use.

    Start-up is paid by every command an operator or a Procfile runs: a
    command imports only what it needs, and ``--help`` imports no channel.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *lazy_command_help()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = _lazy_command(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but commands not imported yet show the help from their table."""
        names = self.list_commands(ctx)
        if not names:
            return
        lazy = lazy_command_help()
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                # click's own shortening, on the help text from the table.
                stand_in = click.Command(name, help=lazy[name])
                rows.append((name, stand_in.get_short_help_str(limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=IntakeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cashplus-intake")
def main() -> None:
    """Cash Plus complaints intake gateway."""


# -- processes --------------------------------------------------------------
@main.command()
def run() -> None:
    """Run every process (web, relay, channel workers) in one, with embedded defaults."""
    from gateway.runner import run_all

    with _services() as services:
        if services.store.api_keys.count_active() == 0:
            click.echo(
                "No API key yet: create one with `intake api-key create NAME` to call /v1/.",
                err=True,
            )
        run_all(services, _http_listener(services.settings))


@main.command()
def web() -> None:
    """Run the HTTP server (API, webhooks, health, metrics)."""
    from gateway.runner import serve_web

    with _services() as services:
        serve_web(services, _http_listener(services.settings))


def _http_listener(settings: Settings) -> Any:
    """The HTTP socket; a port that cannot be listened on is one line and exit 69."""
    from gateway.runner import listening_socket

    try:
        return listening_socket(settings.http_host, settings.http_port)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {settings.http_host}:{settings.http_port}: {exc.strerror or exc}",
            EX_UNAVAILABLE,
        ) from None


@main.command()
@click.option("--once", is_flag=True, help="Publish what the outbox holds now, then exit.")
def relay(once: bool) -> None:
    """Publish the outbox to the broker (with confirms on AMQP)."""
    from gateway.runner import build_relay, run_relay

    with _services() as services:
        if not once:
            _run_until_signal(lambda stop: run_relay(services, stop))
            return
        _drain_outbox(services, build_relay(services))


@contextmanager
def publishing(services: Any, enabled: bool = True) -> Iterator[None]:
    """Publish the outbox while the body runs, then whatever it left, before returning.

    For the one-shot intake commands (``intake imap poll --once``): their
    complaints are on the broker when the command exits, as if a relay ran
    beside them. Publishing starts with the first committed batch, so the
    broker's confirms overlap with the intake. A broker that cannot be
    reached is an error (exit 69) only after the body ran: what it committed
    stays in the outbox for ``intake relay``.
    """
    if not enabled:
        yield
        return
    from gateway.runner import build_relay

    relay_ = build_relay(services)
    stop = threading.Event()
    beside = threading.Thread(target=relay_.run, args=(stop,), name="relay", daemon=True)
    beside.start()
    try:
        yield
    finally:
        stop.set()
        beside.join()
    _drain_outbox(services, relay_)


def _drain_outbox(services: Any, relay_: Any) -> None:
    """Publish what the outbox holds now (``intake relay --once``); exit 69 on a broker failure."""
    from router.broker import describe

    try:
        result = relay_.publish_pending()
    except Exception as exc:
        raise CommandError(
            f"broker {describe(services.settings.resolved_broker_url)} unavailable: "
            f"{type(exc).__name__}: {exc}; the complaints wait in the outbox",
            EX_UNAVAILABLE,
        ) from None
    finally:
        relay_.close()
    # All this relay published: with ``publishing``, its run beside the body too.
    click.echo(f"published {relay_.published} message(s)", err=True)
    if not result.complete:
        problem = result.problem or "some messages were not confirmed"
        raise CommandError(f"{problem}; they stay in the outbox", EX_UNAVAILABLE)


def _run_until_signal(loop: Callable[[threading.Event], None]) -> None:
    import signal

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    loop(stop)


@main.command()
@click.option("--count", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Stop after S seconds without one.")
@click.option("--dead-letters", is_flag=True, help="Read the dead-letter queue instead.")
def consume(count: int | None, timeout: float | None, dead_letters: bool) -> None:
    """Print messages from complaints.inbound as JSON lines, acknowledging each."""
    from router.consumer import BrokerUnavailable, consume_messages

    settings = _settings()
    try:
        received = consume_messages(
            settings,
            click.echo,
            count=count,
            timeout=timeout,
            dead_letters=dead_letters,
        )
    except BrokerUnavailable as exc:
        raise CommandError(f"broker unavailable: {exc}", EX_UNAVAILABLE) from None
    if count is not None and received < count:
        raise CommandError(f"timed out after {received} of {count} message(s)", EX_FAILED)


@main.command()
@click.option(
    "--since",
    required=True,
    help="Messages published at or after this date (YYYY-MM-DD, local) or ISO 8601 time.",
)
@click.option(
    "--publish/--no-publish",
    default=True,
    help="Publish them before exiting (default), or leave that to a running relay.",
)
def replay(since: str, publish: bool) -> None:
    """Publish again every message published since a date (consumers drop repeats by id).

    The messages are queued in the outbox again, then the outbox is published
    as `intake relay --once` does. A message whose earlier copy still waits
    in the outbox is not queued a second time.
    """
    from gateway.runner import build_relay

    moment = _parse_since(since)
    with _services() as services:
        queued = services.store.outbox.replay_since(moment)
        click.echo(
            f"queued {queued} message(s) published since {moment.isoformat()} "
            "for publication again",
            err=True,
        )
        if publish:
            _drain_outbox(services, build_relay(services))


def _parse_since(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(_settings().timezone)
    try:
        if len(text) == 10:
            return datetime.combine(datetime.fromisoformat(text).date(), time(0), tzinfo=zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since: not a date or time: {text!r}", EX_USAGE) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone).astimezone(UTC)


# -- operations -------------------------------------------------------------
@main.group("api-key")
def api_key() -> None:
    """Manage the API keys of partner systems."""


@api_key.command("create")
@click.argument("name")
@click.option(
    "--read-all",
    is_flag=True,
    help=(
        "The key may read back any complaint, not only those it submitted (a call centre),"
        " and use the mailroom's letter routes."
    ),
)
def api_key_create(name: str, read_all: bool) -> None:
    """Create a key for NAME and print it (shown only this once)."""
    from gateway.store.apikeys import ApiKeyExists

    with _services() as services:
        try:
            key = services.store.api_keys.create(name, reads_all=read_all)
        except ApiKeyExists as exc:
            raise CommandError(str(exc), EX_DATAERR) from None
    click.echo(key)


@api_key.command("list")
def api_key_list() -> None:
    """List keys (names and prefixes; the keys themselves are not stored)."""
    with _services() as services:
        for name, prefix, created, revoked, reads_all in services.store.api_keys.list():
            state = f"revoked {revoked:%Y-%m-%d}" if revoked else "active"
            scope = "reads all" if reads_all else "reads its own"
            click.echo(f"{name}\t{prefix}…\tcreated {created:%Y-%m-%d}\t{state}\t{scope}")


@api_key.command("rotate")
@click.argument("name")
def api_key_rotate(name: str) -> None:
    """Give NAME a new key and print it; the old key stops working (within 5 s everywhere)."""
    with _services() as services:
        key = services.store.api_keys.rotate(name)
    if key is None:
        raise CommandError(f"no active API key named {name!r}", EX_FAILED)
    click.echo(key)


@api_key.command("revoke")
@click.argument("name")
def api_key_revoke(name: str) -> None:
    """Revoke the key of NAME."""
    with _services() as services:
        if not services.store.api_keys.revoke(name):
            raise CommandError(f"no active API key named {name!r}", EX_FAILED)


# A failed check: its exit code and its one line.
Problem = tuple[int, str]


@main.command("check-config")
def check_config() -> None:
    """Read the configuration, reach the database and the broker, and say what is wrong.

    Changes nothing: no migration, no folder, no exchange or queue. Each
    check prints its line; the first problem gives the exit code (78 a
    schema not at the newest revision or a folder that cannot be written,
    75 the database unreachable, 69 the broker unreachable).
    """
    settings = _settings()
    checks = (_check_database, _check_blobs, _check_broker)
    problems = [problem for check in checks if (problem := check(settings)) is not None]
    if problems:
        raise CommandError("; ".join(message for _code, message in problems), problems[0][0])


def _check_database(settings: Settings) -> Problem | None:
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.store import inspect_schema

    where = _safe_db(settings)
    try:
        state = inspect_schema(settings)
    except SQLAlchemyError as exc:
        click.echo(f"database: {where}: UNREACHABLE")
        return EX_TEMPFAIL, f"database unreachable: {_one_line(exc)}"
    click.echo(f"database: {where}: {state.describe()}")
    return None if state.up_to_date else (EX_CONFIG, f"database: {state.describe()}")


def _check_blobs(settings: Settings) -> Problem | None:
    return _check_folder("blobs", settings.blob_dir)


def _check_broker(settings: Settings) -> Problem | None:
    """Connect, declare nothing; the embedded broker is a folder, looked at only."""
    from gateway.services import BrokerProbe

    if settings.uses_embedded_broker:
        return _check_folder("broker (embedded)", settings.broker_dir)
    ok, detail = BrokerProbe(settings, ttl=0).check()
    click.echo(f"broker: {detail}: {'reachable' if ok else 'UNREACHABLE'}")
    return None if ok else (EX_UNAVAILABLE, "broker unreachable")


def _check_folder(name: str, folder: Path) -> Problem | None:
    """Could the gateway write in ``folder``? A missing one is made at first start, not here."""
    folder = folder.resolve()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        click.echo(f"{name}: {folder}: NOT WRITABLE ({existing})")
        return EX_CONFIG, f"{name} folder {folder} cannot be written"
    state = "writable" if existing == folder else "writable (created at first start)"
    click.echo(f"{name}: {folder}: {state}")
    return None


@main.command()
@click.option(
    "--blobs",
    is_flag=True,
    help="Also move evidence stored in the old ab/cd/ folders to ab/ (once, after an upgrade).",
)
def migrate(blobs: bool) -> None:
    """Bring the database schema to the newest version."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.store.blobs import BlobStore
    from gateway.store.db import create_store_engine
    from gateway.store.db import migrate as upgrade

    settings = _settings()
    try:
        engine = create_store_engine(settings.resolved_database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        raise CommandError(
            f"cannot migrate the database at {_safe_db(settings)}: {_one_line(exc)}",
            _migration_exit_code(exc),
        ) from None
    click.echo("schema up to date", err=True)
    if blobs:
        moved = BlobStore(settings.blob_dir).migrate_layout()
        click.echo(f"moved {moved} blob(s) to the current layout", err=True)


def _migration_exit_code(exc: Exception) -> int:
    """75 when the database could not be reached (worth trying again), else 70.

    Any other database error (a migration that breaks a constraint or a
    statement the database refuses, a file that is not a database) fails
    the same way every time, so a supervisor must not keep retrying it.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, (InterfaceError, OSError)):
        return EX_TEMPFAIL
    # SQLite reports a broken migration ("no such table", "duplicate column")
    # as an OperationalError too: only the errors of reaching the database count.
    if isinstance(exc, OperationalError) and _UNREACHABLE.search(str(exc.orig or exc)):
        return EX_TEMPFAIL
    return EX_SOFTWARE


_UNREACHABLE = re.compile(
    r"could not connect|connection|timeout|timed out|unable to open database|"
    r"database is locked|server closed|no route|refused|name or service",
    re.IGNORECASE,
)


@main.command()
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
