"""``intake api-key``: the keys partner systems call the API with.

A key is shown once, at creation or rotation; the store keeps only its hash
and prefix (``gateway.store.apikeys``). What it may do is its scopes
(``--scope``, repeated; ``gateway.store.apikeys.SCOPES``), granted or
withdrawn later with ``grant`` / ``withdraw``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from gateway.lib.commands import CommandError, ExitCode, failed, open_services
from gateway.store.apikeys import DEFAULT_SCOPES, READ_ALL, SCOPES, ApiKeyExists, UnknownScope

_SCOPE_HELP = "; ".join(f"{name}: {what}" for name, what in SCOPES.items())


Command = TypeVar("Command", bound=Callable[..., Any])


def _scope_option(help_text: str) -> Callable[[Command], Command]:
    return click.option(
        "--scope",
        "scopes",
        multiple=True,
        type=click.Choice(list(SCOPES)),
        metavar="SCOPE",
        help=f"{help_text} (repeat for several). {_SCOPE_HELP}.",
    )


def _shown(scopes: frozenset[str]) -> str:
    return ",".join(sorted(scopes)) or "(no scope)"


@click.group("api-key")
def api_key() -> None:
    """Manage the API keys of partner systems."""


@api_key.command("create")
@click.argument("name")
@_scope_option("What the key may do; none named: " + ", ".join(sorted(DEFAULT_SCOPES)))
@click.option(
    "--read-all",
    is_flag=True,
    help=f"Shorthand for --scope {READ_ALL} (added to the other scopes, or to the default ones).",
)
def api_key_create(name: str, scopes: tuple[str, ...], read_all: bool) -> None:
    """Create a key for NAME and print it (shown only this once)."""
    granted = set(scopes or DEFAULT_SCOPES) | ({READ_ALL} if read_all else set())
    with open_services() as services:
        try:
            key = services.store.api_keys.create(name, granted)
        except ApiKeyExists as exc:
            raise failed(exc) from None
    click.echo(key)


@api_key.command("list")
def api_key_list() -> None:
    """List keys (names and prefixes; the keys themselves are not stored)."""
    with open_services() as services:
        for name, prefix, created, revoked, scopes in services.store.api_keys.list():
            state = f"revoked {revoked:%Y-%m-%d}" if revoked else "active"
            click.echo(f"{name}\t{prefix}…\tcreated {created:%Y-%m-%d}\t{state}\t{_shown(scopes)}")


@api_key.command("grant")
@click.argument("name")
@_scope_option("A scope to give the key")
def api_key_grant(name: str, scopes: tuple[str, ...]) -> None:
    """Give the key of NAME more scopes (within 5 s everywhere); print what it has now."""
    _change_scopes(name, add=scopes)


@api_key.command("withdraw")
@click.argument("name")
@_scope_option("A scope to take from the key")
def api_key_withdraw(name: str, scopes: tuple[str, ...]) -> None:
    """Take scopes from the key of NAME (within 5 s everywhere); print what it has now."""
    _change_scopes(name, remove=scopes)


def _change_scopes(name: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
    if not (add or remove):
        raise click.UsageError("name at least one --scope")
    with open_services() as services:
        try:
            scopes = services.store.api_keys.change_scopes(name, add=add, remove=remove)
        except UnknownScope as exc:
            raise failed(exc) from None
    if scopes is None:
        raise CommandError(f"no active API key named {name!r}", ExitCode.FAILED)
    click.echo(f"{name}\t{_shown(scopes)}")


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
