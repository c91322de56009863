"""``intake users add|list|disable``: staff accounts for the mailroom and operator pages."""

from __future__ import annotations

import sys

import click

from gateway.lib.commands import CommandError, ExitCode, failed, open_services
from gateway.lib.http.auth import accounts_for
from gateway.store.passwords import WeakPassword
from gateway.store.staff import UserExists


@click.group("users")
def users() -> None:
    """Manage staff accounts (the mailroom upload page, operator pages)."""


@users.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
def users_add(name: str, password_stdin: bool) -> None:
    """Create the account NAME; prompts for its password."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_services() as services:
        try:
            accounts_for(services).add(name, password)
        except (UserExists, WeakPassword) as exc:
            raise failed(exc) from None
    click.echo(f"user {name} created", err=True)


@users.command("list")
def users_list() -> None:
    """List accounts: name, creation date, state."""
    with open_services() as services:
        for user in accounts_for(services).list():
            state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
            click.echo(f"{user.name}\tcreated {user.created_at:%Y-%m-%d}\t{state}")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable NAME and end their sessions."""
    with open_services() as services:
        if not accounts_for(services).disable(name):
            raise CommandError(f"no active user named {name!r}", ExitCode.FAILED)
