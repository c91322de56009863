"""Shell commands of the acknowledgements, added to ``intake`` through ``gateway.components``.

- ``intake ack-worker``: the worker (Procfile process ``ack``).
- ``intake ack report --days N``: complaints received more than N days ago
  without a sent acknowledgement, one per line (tab-separated), for the
  10-day obligation; exit 1 with ``--check`` when there is any.
  Then, on stderr, per method: acknowledgements delivered, undelivered
  (and how many of those the next method re-sent), pending delivery.
  ``--deliveries [--since DATE]``: the undelivered ones instead, one per
  line, with their error, whether they were re-sent, and where they stand.
- ``intake ack retry [--reason R] [--since DATE] [REFERENCE ...]``: once
  the cause (say a wrong Twilio token) is fixed, re-open failed
  acknowledgements and bring forward deferred ones (still failing on our
  side, waiting for the workers' next try), whose 10-day window is still
  open; a running ``intake ack-worker`` sends them within seconds. Refusals
  for good (``recipient_refused``) only when ``--reason`` names them. One
  line per complaint: re-opened, or why not.
- ``intake ack letters``: acknowledgement letters waiting for the mailroom.
- ``intake ack texts``: the acknowledgement's languages, whether a native
  speaker has reviewed their texts, and which complaint language tags get them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import click

from gateway.lib.commands import (
    CommandError,
    ExitCode,
    open_services,
    parse_since,
    run_until_signal,
)

if TYPE_CHECKING:
    from gateway.store.deliveries import DeliveryReport

# Said of a REFERENCE asked for and not re-opened.
NOT_RETRYABLE = "not failed or deferred, or past its 10-day window (refused for good: --reason)"


@click.command("ack-worker")
def ack_worker() -> None:
    """Acknowledge complaints from the complaints.acks queue until SIGINT or SIGTERM."""
    from gateway.acks.worker import AckWorker

    with open_services() as services:
        try:
            worker = AckWorker(services)
        except ValueError as exc:  # a malformed relay URL, named by the error
            raise CommandError(f"configuration error: {exc}", ExitCode.CONFIG) from None
        run_until_signal(worker.run)


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
@click.option(
    "--deliveries",
    is_flag=True,
    help=(
        "List the acknowledgements reported undelivered (Twilio, bounces) instead, "
        "and whether the next method re-sent them."
    ),
)
@click.option(
    "--since",
    help="With --deliveries: only those handed over at or after this date or time (local time).",
)
def ack_report(days: int, check: bool, deliveries: bool, since: str | None) -> None:
    """Complaints without a sent acknowledgement after DAYS days, and delivery counts.

    The counts (on stderr) say, per method, how many acknowledgements the
    provider reported delivered, undelivered, or not yet either (pending).
    """
    moment = parse_since(since) if since else None
    with open_services() as services:
        store = services.store.acks
        overdue = [] if deliveries else store.overdue(days)
        report = services.store.deliveries.delivery_report(moment)
    if deliveries:
        _undelivered_lines(report)
        return
    click.echo("reference\tchannel\treceived_at\tack_due_at\tstatus\treason")
    for item in overdue:
        click.echo(
            f"{item.reference}\t{item.channel}\t{item.received_at.isoformat()}\t"
            f"{item.ack_due_at.isoformat()}\t{item.status}\t{item.reason or ''}"
        )
    click.echo(
        f"{len(overdue)} complaint(s) without an acknowledgement after {days} day(s)", err=True
    )
    _delivery_counts(report)
    if check and overdue:
        raise CommandError(f"{len(overdue)} complaint(s) not acknowledged", ExitCode.FAILED)


def _delivery_counts(report: DeliveryReport) -> None:
    """One line per method: delivered, undelivered (re-sent), pending delivery."""
    resent: Counter[str] = Counter(item.method for item in report.undelivered if item.resent)
    for method, counts in sorted(report.counts.items()):
        click.echo(
            f"{method}: {counts['delivered']} delivered, {counts['undelivered']} undelivered "
            f"({resent[method]} re-sent), {counts['pending']} pending delivery",
            err=True,
        )


def _undelivered_lines(report: DeliveryReport) -> None:
    click.echo("reference\tmethod\tstatus\terror\treported_at\tresent\tnow")
    for item in report.undelivered:
        reported = item.reported_at.isoformat() if item.reported_at else ""
        now = f"{item.now_status} by {item.now_method}" if item.now_method else item.now_status
        click.echo(
            f"{item.reference}\t{item.method}\t{item.state}\t{item.error or ''}\t{reported}\t"
            f"{'yes' if item.resent else 'no'}\t{now}"
        )
    _delivery_counts(report)


@ack_group.command("retry")
@click.option(
    "--reason",
    help=(
        "Only those whose last failure had this reason (e.g. provider_account, relay_login); "
        "recipient_refused only when named here."
    ),
)
@click.option(
    "--since", help="Only those that last failed at or after this date or time (local time)."
)
@click.argument("references", nargs=-1)
def ack_retry(reason: str | None, since: str | None, references: tuple[str, ...]) -> None:
    """Send again, now, the failed or deferred acknowledgements still within their 10-day window."""
    from gateway.acks.policy import AckContext, daily_budgets

    moment = parse_since(since) if since else None
    with open_services() as services:
        store = services.store.acks
        cap = services.settings.ack_max_per_recipient_per_day
        budgets = daily_budgets(AckContext.from_settings(services.settings))
        found = store.retryable(reason=reason, since=moment, references=references)
        reopened = 0
        for record in found:
            why_not = store.reopen(record.complaint_id, cap, budgets=budgets)
            reopened += why_not is None
            click.echo(f"{record.reference}\t{why_not or 'reopened'}\t{record.method or ''}")
    asked = {reference.upper() for reference in references}
    for reference in sorted(asked - {record.reference for record in found}):
        click.echo(f"{reference}\t{NOT_RETRYABLE}\t")
    click.echo(f"{reopened} acknowledgement(s) re-opened for the worker", err=True)
    if asked and reopened < len(asked):
        raise CommandError("some acknowledgements were not re-opened", ExitCode.FAILED)


@ack_group.command("letters")
def ack_letters() -> None:
    """Acknowledgement letters queued for the mailroom (id, reference, since)."""
    with open_services() as services:
        store = services.store.acks
        for record in store.letters():
            click.echo(f"{record.id}\t{record.reference}\t{record.created_at.isoformat()}")


@ack_group.command("texts")
def ack_texts() -> None:
    """The acknowledgement's languages: reviewed or not, and the complaint tags they answer."""
    from gateway.acks.texts import LANGUAGES_BY_TAG, TEMPLATE_LANGUAGES, UNREVIEWED

    for language in TEMPLATE_LANGUAGES:
        review = "UNREVIEWED" if language in UNREVIEWED else "reviewed"
        tags = [tag for tag, languages in LANGUAGES_BY_TAG.items() if languages[0] == language]
        click.echo(f"{language:<9} {review:<10} {' '.join(tags)}")
    if UNREVIEWED:
        names = ", ".join(sorted(UNREVIEWED))
        click.echo(f"not reviewed by a native speaker: {names}", err=True)


COMMANDS: tuple[click.Command, ...] = (ack_worker, ack_group)
