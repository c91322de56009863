"""``intake api-key``: the keys partner systems call the API with.

A key is shown once, at creation or rotation; the store keeps only its hash
and prefix (``gateway.store.apikeys``).
"""

from __future__ import annotations

import click

from gateway.lib.commands import CommandError, ExitCode, failed, open_services
from gateway.store.apikeys import ApiKeyExists


@click.group("api-key")
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
    with open_services() as services:
        try:
            key = services.store.api_keys.create(name, reads_all=read_all)
        except ApiKeyExists as exc:
            raise failed(exc) from None
    click.echo(key)


@api_key.command("list")
def api_key_list() -> None:
    """List keys (names and prefixes; the keys themselves are not stored)."""
    with open_services() as services:
        for name, prefix, created, revoked, reads_all in services.store.api_keys.list():
            state = f"revoked {revoked:%Y-%m-%d}" if revoked else "active"
            scope = "reads all" if reads_all else "reads its own"
            click.echo(f"{name}\t{prefix}…\tcreated {created:%Y-%m-%d}\t{state}\t{scope}")


@api_key.command("rotate")
@click.argument("name")
def api_key_rotate(name: str) -> None:
    """Give NAME a new key and print it; the old key stops working (within 5 s everywhere)."""
    with open_services() as services:
        key = services.store.api_keys.rotate(name)
    if key is None:
        raise CommandError(f"no active API key named {name!r}", ExitCode.FAILED)
    click.echo(key)


@api_key.command("revoke")
@click.argument("name")
def api_key_revoke(name: str) -> None:
    """Revoke the key of NAME."""
    with open_services() as services:
        if not services.store.api_keys.revoke(name):
            raise CommandError(f"no active API key named {name!r}", ExitCode.FAILED)
