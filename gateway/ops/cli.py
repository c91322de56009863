"""``intake quarantine`` and ``intake dead-letters``: the operator page's lists from a shell.

- ``intake quarantine list [--all] [--channel C]``, ``show ID [--raw]``,
  ``reprocess ID``: inputs refused at a channel's edge, kept with the
  reason, run through their channel again once the cause is fixed.
- ``intake dead-letters list``, ``show ID``, ``requeue ID... | --all``: the
  ``complaints.dead`` queue; listing leaves every message in place.
  (``replay`` is the old name of both, kept hidden for one release.)

Exit codes (``ExitCode``): 1 not found, 65 the input is still refused, 69
the broker is unreachable, 75 the store is unavailable. The broker client
and the channels are imported inside the commands that use them: ``intake
quarantine list`` starts without them.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from gateway.lib.commands import (
    CommandError,
    ExitCode,
    failed,
    old_name,
    open_services,
    settings_or_exit,
)
from gateway.ops.quarantine import replay

if TYPE_CHECKING:
    from router.deadletters import DeadLetters


@click.group("quarantine")
def quarantine_group() -> None:
    """Inputs refused at a channel's edge (kept with the reason), and their replay."""


@quarantine_group.command("list")
@click.option("--all", "everything", is_flag=True, help="Include items already resolved.")
@click.option("--channel", help="Only this channel (email, api, webform, letter...).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def quarantine_list(everything: bool, channel: str | None, limit: int) -> None:
    """Newest first: id, received, channel, reason code, size, resolution, reason."""

    with open_services() as services:
        items = services.store.quarantine.entries(resolved=everything, limit=limit, channel=channel)
    for item in items:
        state = f"resolved:{item.complaint_id or '-'}" if item.resolved_at else "open"
        click.echo(
            f"{item.id}\t{item.created_at.isoformat()}\t{item.channel}\t{item.reason_code}\t"
            f"{item.size}\t{state}\t{item.reason}"
        )
    click.echo(f"{len(items)} item(s)", err=True)


@quarantine_group.command("show")
@click.argument("item_id")
@click.option("--raw", is_flag=True, help="Write the stored input itself to stdout.")
def quarantine_show(item_id: str, raw: bool) -> None:
    """One item (by id or a unique prefix of six characters or more)."""
    from dataclasses import asdict

    with open_services() as services:
        item = services.store.quarantine.get(item_id)
        if item is None:
            raise CommandError(f"no quarantined item {item_id!r}", ExitCode.FAILED)
        if raw:
            sys.stdout.buffer.write(services.store.blobs.get(item.stored_at))
            return
    click.echo(json.dumps(asdict(item), indent=2, ensure_ascii=False, default=str))


@quarantine_group.command("reprocess")
@click.argument("item_id")
def quarantine_reprocess(item_id: str) -> None:
    """Run the stored input through its channel again; resolved if it goes through."""
    with open_services() as services:
        item = services.store.quarantine.get(item_id)
        if item is None:
            raise CommandError(f"no quarantined item {item_id!r}", ExitCode.FAILED)
        result = replay(services, item)
        # The staff audit trail, as the operator page's button writes it.
        services.store.staff_audit.record(
            f"cli:{_shell_user()}",
            "quarantine_reprocess",
            item.id,
            f"{result.detail} {result.reference or ''}".strip()
            if result.ok
            else f"still refused: {result.detail}",
        )
    if not result.ok:
        raise CommandError(f"still refused: {result.detail}", ExitCode.DATAERR)
    click.echo(f"{item.id}\t{result.reference or '-'}\t{result.complaint_id or '-'}")
    click.echo(f"replayed: {result.detail}", err=True)


def _shell_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


@click.group("dead-letters")
def dead_letters_group() -> None:
    """The complaints.dead queue: messages a consumer rejected, and their replay."""


def _dead_letters() -> DeadLetters:
    from router.deadletters import DeadLetters

    return DeadLetters(settings_or_exit())


@dead_letters_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def dead_letters_list(limit: int) -> None:
    """Message id, routing key, queue it died in, reason, time, reference (left in place)."""
    from router.broker import BrokerUnavailable

    try:
        letters = _dead_letters().peek(limit)
    except BrokerUnavailable as exc:
        raise failed(exc, "broker unavailable") from None
    for letter in letters:
        died = letter.died_at.isoformat() if letter.died_at else "-"
        click.echo(
            f"{letter.message_id}\t{letter.routing_key}\t{letter.queue or '-'}\t"
            f"{letter.reason or '-'}\t{died}\t{letter.summary.get('reference', '-')}"
        )
    click.echo(f"{len(letters)} dead letter(s) listed", err=True)


@dead_letters_group.command("show")
@click.argument("message_id")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
def dead_letters_show(message_id: str, limit: int) -> None:
    """Headers and body of the dead letter(s) with this message id (left in place)."""
    from router.broker import BrokerUnavailable

    try:
        letters = [item for item in _dead_letters().peek(limit) if item.message_id == message_id]
    except BrokerUnavailable as exc:
        raise failed(exc, "broker unavailable") from None
    if not letters:
        raise CommandError(
            f"no dead letter {message_id!r} among the first {limit}", ExitCode.FAILED
        )
    for letter in letters:
        click.echo(json.dumps(letter.headers, indent=2, ensure_ascii=False, default=str))
        click.echo(letter.body.decode("utf-8", "replace"))


@dead_letters_group.command("requeue")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every dead letter.")
@click.option("--queue", help="Only those that died in this queue (e.g. complaints.acks).")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
def dead_letters_requeue(
    message_ids: tuple[str, ...], everything: bool, queue: str | None, limit: int
) -> None:
    """Publish dead letters again to the queue they died in, then take them off."""
    from router.broker import BrokerUnavailable

    if not message_ids and not everything:
        raise click.UsageError("name message ids, or give --all")
    try:
        wanted = None if everything else set(message_ids)
        outcome = _dead_letters().replay(wanted, limit, queue=queue)
    except BrokerUnavailable as exc:
        raise failed(exc, "broker unavailable") from None
    for message_id in outcome.replayed:
        click.echo(message_id)
    click.echo(f"replayed {len(outcome.replayed)} dead letter(s)", err=True)
    missing = set(message_ids) - set(outcome.replayed) - set(outcome.failed)
    if outcome.failed or (missing and not everything):
        problems = [f"{key}: {why}" for key, why in outcome.failed.items()]
        problems += [f"{key}: not found" for key in sorted(missing)]
        raise CommandError("; ".join(problems), ExitCode.FAILED)


quarantine_group.add_command(old_name(quarantine_reprocess, "replay"))
dead_letters_group.add_command(old_name(dead_letters_requeue, "replay"))

COMMANDS: tuple[click.Command, ...] = (quarantine_group, dead_letters_group)
