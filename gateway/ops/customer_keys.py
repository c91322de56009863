"""``intake customers backfill``: customer keys for complaints stored before they existed.

Complaints recorded since migration 0020 get their contact points' keys in
the same transaction; older ones get them here, oldest first, a batch per
transaction, with progress on stderr (safe while the service runs, and to run
again). The messages already published are not changed: the keys show in
``GET /v1/customers/{key}/complaints``, on ``/ops/complaints/{reference}``
and in the ``related`` of later complaints.

Exit codes: 0 done, 75 the store is unavailable, 78 a configuration error.
"""

from __future__ import annotations

import click

from gateway.lib.commands import open_services


@click.group("customers")
def customers_group() -> None:
    """One customer across channels: pseudonymous keys of phones and e-mails."""


@customers_group.command("backfill")
@click.option(
    "--batch",
    default=500,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Complaints per transaction.",
)
def customers_backfill(batch: int) -> None:
    """Key the contact points of complaints stored without them (oldest first)."""
    with open_services() as services:
        done = services.store.customers.backfill(batch=batch, progress=_progress)
    click.echo(
        f"{done.keyed} complaint(s) keyed, {done.looked_at - done.keyed} without a phone or e-mail"
    )


def _progress(done: int, total: int) -> None:
    click.echo(f"{done}/{total} complaints", err=True)


COMMANDS: tuple[click.Command, ...] = (customers_group,)
