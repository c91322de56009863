"""``intake evidence verify [--since DATE]`` and ``intake evidence root [--date D]``.

``verify`` re-reads every blob the evidence log names, checks its hash and
the chain, and exits 0 when whole, 65 naming each broken entry (problem,
sequence, complaint reference, sha256) on stdout. A blob removed under the
retention policy or an erasure is not broken when a ``removed`` entry of the
log names it (``intake retention purge``, ``intake personal-data erase``); a
blob gone without one is ``blob missing``. ``root`` publishes (once)
and prints a day's root hash, ``event.evidence.root``.
"""

from __future__ import annotations

from datetime import date

import click

from gateway.lib.commands import CommandError, ExitCode, open_services


@click.group("evidence")
def evidence_group() -> None:
    """The append-only evidence log: check it, publish its daily root."""


@evidence_group.command("verify")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only entries appended from this local day on (the chain is checked from there).",
)
@click.option("--every", type=click.IntRange(min=1), default=1000, show_default=True)
def evidence_verify(since: object, every: int) -> None:
    """Re-read every blob and check its hash and the chain; 65 naming each broken entry."""
    day = since.date() if since is not None else None  # type: ignore[attr-defined]
    with open_services() as services:
        result = services.store.evidence.verify(
            day,
            progress=lambda done: click.echo(f"{done} entries checked", err=True),
            every=every,
        )
    for broken in result.broken:
        click.echo(broken.line())
    click.echo(
        f"{result.entries} entries checked up to sequence {result.last_sequence}, "
        f"{result.removals} removal(s) recorded ({result.removed} blob(s) removed under them), "
        f"{len(result.broken)} broken",
        err=True,
    )
    if not result.whole:
        raise CommandError(f"{len(result.broken)} broken entr(y/ies)", ExitCode.DATAERR)


@evidence_group.command("root")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The local day (default: yesterday, the last closed day).",
)
def evidence_root(day: object) -> None:
    """Publish (once) and print a day's root: day, sequence, root hash, event id."""
    with open_services() as services:
        log = services.store.evidence
        wanted: date = day.date() if day is not None else log.yesterday()  # type: ignore[attr-defined]
        outcome = log.publish_root(wanted)
    if outcome is None:
        raise CommandError(f"the evidence log had no entry by the end of {wanted}", ExitCode.FAILED)
    event, created = outcome
    details = event.details
    click.echo(f"{details['day']}\t{details['sequence']}\t{details['root']}\t{event.id}")
    click.echo("published" if created else "already published", err=True)


COMMANDS: tuple[click.Command, ...] = (evidence_group,)
