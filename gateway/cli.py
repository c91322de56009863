"""The ``intake`` command: the gateway's processes, and every component's commands.

``intake`` -> **cli** (the command tree) -> ``gateway.components`` (each
component's commands, imported on use) and ``gateway.admin`` (check-config,
migrate, schema). The kit every command module is written with is
``gateway.lib.commands``; exit codes are its ``ExitCode`` (sysexits), and
errors are one line on stderr.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from config.settings import Settings
from gateway.admin import check_config, migrate, schema
from gateway.lib.commands import (
    CommandError,
    ExitCode,
    drain_outbox,
    failed,
    freeze_heap,
    old_name,
    open_services,
    parse_since,
    publishing,
    run_until_signal,
    settings_or_exit,
)


def lazy_command_help() -> dict[str, str]:
    """Commands ``intake`` imports on use, with their one-line help."""
    from gateway.components import COMPONENTS

    return COMPONENTS.command_help()


class IntakeGroup(click.Group):
    """``intake``: its own commands, plus the components', imported on use.

    Start-up is paid by every command an operator or a Procfile runs: a
    command imports only what it needs, and ``--help`` imports no channel.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *lazy_command_help()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from gateway.components import COMPONENTS

        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = COMPONENTS.command(cmd_name)
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
                if not lazy[name]:
                    continue  # hidden: an old name kept for scripts
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


main.add_command(check_config)
main.add_command(migrate)
main.add_command(schema)


# -- processes --------------------------------------------------------------
@main.command()
def run() -> None:
    """Run every process (web, relay, channel workers) in one, with embedded defaults."""
    from gateway.runner import run_all

    with open_services() as services:
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

    with open_services() as services:
        serve_web(services, _http_listener(services.settings))


def _http_listener(settings: Settings) -> Any:
    """The HTTP socket; a port that cannot be listened on is one line and exit 69."""
    from gateway.runner import listening_socket

    try:
        return listening_socket(settings.http_host, settings.http_port)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {settings.http_host}:{settings.http_port}: {exc.strerror or exc}",
            ExitCode.UNAVAILABLE,
        ) from None


@main.command()
@click.option("--once", is_flag=True, help="Publish what the outbox holds now, then exit.")
def relay(once: bool) -> None:
    """Publish the outbox to the broker (with confirms on AMQP)."""
    from gateway.runner import run_relay
    from router.relay import build_relay

    with open_services() as services:
        if not once:
            run_until_signal(lambda stop: run_relay(services, stop))
            return
        drain_outbox(services, build_relay(services.settings, services.store))


@main.command("normalize-worker")
@click.option("--once", is_flag=True, help="Normalize what is captured now, then exit.")
def normalize_worker(once: bool) -> None:
    """Normalize captured inputs into complaints (a runner; several may run)."""
    from gateway.lib.normalize_runner import NormalizeRunner
    from gateway.runner import capture_normalizers
    from normalizer.language import warm_up_in_background

    with open_services() as services:
        # Background work: on a shared host the edges' answers come first.
        os.nice(services.settings.normalize_nice)
        warm_up_in_background(then=freeze_heap)
        runner = NormalizeRunner(services, capture_normalizers())
        if not once:
            run_until_signal(runner.run)
            return
        with publishing(services):
            while runner.run_once():
                pass
        click.echo(f"{runner.stats.finished} normalized, {runner.stats.quarantined} quarantined")


@main.command()
@click.option("--count", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Stop after S seconds without one.")
@click.option("--dead-letters", is_flag=True, help="Read the dead-letter queue instead.")
def consume(count: int | None, timeout: float | None, dead_letters: bool) -> None:
    """Print messages from complaints.inbound as JSON lines, acknowledging each."""
    from router.broker import BrokerUnavailable
    from router.consumer import consume_messages

    settings = settings_or_exit()
    try:
        received = consume_messages(
            settings,
            click.echo,
            count=count,
            timeout=timeout,
            dead_letters=dead_letters,
        )
    except BrokerUnavailable as exc:
        raise failed(exc, "broker unavailable") from None
    if count is not None and received < count:
        raise CommandError(f"timed out after {received} of {count} message(s)", ExitCode.FAILED)


_SINCE_HELP = "Messages published at or after this date (YYYY-MM-DD, local) or ISO 8601 time."
_PUBLISH_HELP = "Publish them before exiting (default), or leave that to a running relay."


@main.command()
@click.option("--since", required=True, help=_SINCE_HELP)
@click.option("--publish/--no-publish", default=True, help=_PUBLISH_HELP)
def republish(since: str, publish: bool) -> None:
    """Publish again every message published since a date (consumers drop repeats by id).

    The messages are queued in the outbox again, then the outbox is published
    as `intake relay --once` does. A message whose earlier copy still waits
    in the outbox is not queued a second time.
    """
    from router.relay import build_relay

    moment = parse_since(since)
    with open_services() as services:
        queued = services.store.outbox.replay_since(moment)
        click.echo(
            f"queued {queued} message(s) published since {moment.isoformat()} "
            "for publication again",
            err=True,
        )
        if publish:
            drain_outbox(services, build_relay(services.settings, services.store))


# The verb before ``republish``: kept, hidden, for one release (CHANGELOG).
main.add_command(old_name(republish, "replay"))


# -- intake normalize FILE ---------------------------------------------------
@main.command("normalize")
@click.argument("file", metavar="FILE")
def normalize_file(file: str) -> None:
    """Print the message FILE would become: an .eml / RFC 822 file (or - for
    stdin), or a scanned letter (PDF, TIFF, JPEG, PNG: OCR runs).

    Nothing is stored or published: the id and reference are drawn for this
    preview only, and the evidence points at the blob the raw bytes would be.
    """
    from normalizer.ocr.checks import ACCEPTED as SCAN_TYPES
    from normalizer.ocr.checks import sniff_type

    raw = _read_input(file)
    settings = settings_or_exit()
    kind = sniff_type(raw)
    if kind not in SCAN_TYPES:
        _normalize_email(settings, file, raw)
    elif file != "-":
        _normalize_scan(settings, Path(file))
    else:
        # OCR reads files: a scan piped in is written to a private temp file first.
        with tempfile.TemporaryDirectory(prefix="intake-normalize-") as folder:
            path = Path(folder) / f"stdin.{SCAN_TYPES[kind][0]}"
            path.write_bytes(raw)
            _normalize_scan(settings, path)


def _normalize_email(settings: Settings, file: str, raw: bytes) -> None:
    from channels.email.preview import preview_email, received_time
    from normalizer.contract import ComplaintMessage
    from normalizer.email import EmailInternalError, EmailRejected

    received_at, source = received_time(raw)
    try:
        preview = preview_email(settings, raw, received_at)
    except EmailRejected as exc:
        raise CommandError(
            f"{file}: rejected ({exc.code}): {exc.reason}", ExitCode.DATAERR
        ) from None
    except EmailInternalError as exc:
        raise failed(exc, file) from None
    click.echo(preview.model_dump_json(indent=2))
    if isinstance(preview, ComplaintMessage):
        note = f"id and reference {preview.reference} drawn for this preview only"
    else:
        note = "an auto-reply: it would be stored as an event, not a complaint"
    click.echo(f"note: not stored; {note}; received_at from the {source}", err=True)


def _normalize_scan(settings: Settings, path: Path) -> None:
    from channels.letters.preview import normalize_scan_file
    from normalizer.ocr import OcrFailed, ScanRejected

    try:
        preview = normalize_scan_file(settings, path)
    except ScanRejected as exc:
        raise CommandError(f"{path}: rejected ({exc.code}): {exc}", ExitCode.DATAERR) from None
    except OcrFailed as exc:
        raise CommandError(f"{path}: OCR failed: {exc}", ExitCode.TEMPFAIL) from None
    click.echo(preview.model_dump_json(indent=2))
    click.echo(
        f"note: not stored; id and reference {preview.reference} drawn for this preview only; "
        "received_at is now",
        err=True,
    )


def _read_input(file: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CommandError(
            f"{file}: cannot read: {exc.strerror or exc}", ExitCode.NOINPUT
        ) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
