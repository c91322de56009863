"""Shell commands of the acknowledgements, added to ``intake`` through the channels table.

- ``intake ack-worker``: the worker (Procfile process ``ack``).
- ``intake ack report --days N``: complaints received more than N days ago
  without a sent acknowledgement, one per line (tab-separated), for the
  10-day obligation; exit 1 with ``--check`` when there is any.
- ``intake ack letters``: acknowledgement letters waiting for the mailroom.

``gateway.cli`` imports the channels table, so it is imported here only
inside the commands.
"""

from __future__ import annotations

import click


@click.command("ack-worker")
def ack_worker() -> None:
    """Acknowledge complaints from the complaints.acks queue until SIGINT or SIGTERM."""
    from channels.acks.worker import AckWorker
    from gateway.cli import EX_CONFIG, CommandError, _run_until_signal, _services

    with _services() as services:
        try:
            worker = AckWorker(services)
        except ValueError as exc:  # a malformed relay URL, named by the error
            raise CommandError(f"configuration error: {exc}", EX_CONFIG) from None
        _run_until_signal(worker.run)


@click.group("ack")
def ack_group() -> None:
    """Acknowledgements of receipt (accusés de réception)."""


@ack_group.command("report")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="List complaints received more than this many days ago.",
)
@click.option("--check", is_flag=True, help="Exit 1 when any complaint is listed.")
def ack_report(days: int, check: bool) -> None:
    """Complaints without a sent acknowledgement after DAYS days."""
    from channels.acks.store import AckStore
    from gateway.cli import EX_FAILED, CommandError, _services

    with _services() as services:
        store = AckStore(services.store.engine, services.settings.timezone)
        overdue = store.overdue(days)
    click.echo("reference\tchannel\treceived_at\tack_due_at\tstatus\treason")
    for item in overdue:
        click.echo(
            f"{item.reference}\t{item.channel}\t{item.received_at.isoformat()}\t"
            f"{item.ack_due_at.isoformat()}\t{item.status}\t{item.reason or ''}"
        )
    click.echo(
        f"{len(overdue)} complaint(s) without an acknowledgement after {days} day(s)", err=True
    )
    if check and overdue:
        raise CommandError(f"{len(overdue)} complaint(s) not acknowledged", EX_FAILED)


@ack_group.command("letters")
def ack_letters() -> None:
    """Acknowledgement letters queued for the mailroom (id, reference, since)."""
    from channels.acks.store import AckStore
    from gateway.cli import _services

    with _services() as services:
        store = AckStore(services.store.engine, services.settings.timezone)
        for record in store.letters():
            click.echo(f"{record.id}\t{record.reference}\t{record.created_at.isoformat()}")


COMMANDS: tuple[click.Command, ...] = (ack_worker, ack_group)
