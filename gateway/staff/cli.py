"""``intake staff add|list|set-role|passwd|disable|audit``: staff accounts and their trail.

Roles: ``mailroom`` (the letters pages), ``operator`` (``/ops/``: replays),
``admin`` (everything). Every change made here is written to the staff
audit trail as ``cli:<the shell user>``. ``intake users`` is the old name
of the group (``users add`` there makes an ``admin``, as it did before
roles existed), kept hidden for one release.
"""

from __future__ import annotations

import getpass
import re
import sys
from datetime import UTC, datetime, timedelta

import click

from gateway.lib.commands import CommandError, ExitCode, failed, open_services
from gateway.lib.http.auth import accounts_for
from gateway.lib.services import Services
from gateway.store.passwords import WeakPassword
from gateway.store.staff import ADMIN, ROLES, NoSuchUser, UnknownRole, UserExists

_ROLE = click.Choice(ROLES)
_DURATION = re.compile(r"^(\d+)([mhd])$")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _audit(services: Services, action: str, target: str, detail: str | None = None) -> None:
    services.store.staff_audit.record(_actor(), action, target, detail, role=ADMIN)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _since(value: str | None) -> datetime | None:
    """``24h``, ``7d``, ``30m`` ago, or an ISO date or time (UTC when it has no zone)."""
    if not value:
        return None
    found = _DURATION.match(value.strip())
    if found:
        amount, unit = int(found.group(1)), found.group(2)
        return datetime.now(UTC) - timedelta(
            minutes=amount if unit == "m" else 0,
            hours=amount if unit == "h" else 0,
            days=amount if unit == "d" else 0,
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("a duration (30m, 24h, 7d) or an ISO date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _add(name: str, role: str, password_stdin: bool) -> None:
    password = _read_password(password_stdin)
    with open_services() as services:
        try:
            accounts_for(services).add(name, password, role)
        except (UserExists, WeakPassword, UnknownRole) as exc:
            raise failed(exc) from None
        _audit(services, "user_added", name, f"role {role}")
    click.echo(f"user {name} created ({role})", err=True)


def _list() -> None:
    with open_services() as services:
        for user in accounts_for(services).list():
            state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
            click.echo(f"{user.name}\tcreated {user.created_at:%Y-%m-%d}\t{user.role}\t{state}")


def _disable(name: str) -> None:
    with open_services() as services:
        if not accounts_for(services).disable(name):
            raise CommandError(f"no active user named {name!r}", ExitCode.FAILED)
        _audit(services, "user_disabled", name)


@click.group("staff")
def staff() -> None:
    """Staff accounts (mailroom, operator, admin) and the audit trail of their actions."""


@staff.command("add")
@click.argument("name")
@click.option("--role", type=_ROLE, required=True, help="mailroom, operator or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
def staff_add(name: str, role: str, password_stdin: bool) -> None:
    """Create the account NAME with ROLE; prompts for its password."""
    _add(name, role, password_stdin)


@staff.command("list")
def staff_list() -> None:
    """List accounts: name, creation date, role, state."""
    _list()


@staff.command("disable")
@click.argument("name")
def staff_disable(name: str) -> None:
    """Disable NAME and end their sessions."""
    _disable(name)


@staff.command("set-role")
@click.argument("name")
@click.argument("role", type=_ROLE)
def staff_set_role(name: str, role: str) -> None:
    """Give NAME the role ROLE (their sessions end when it changes)."""
    with open_services() as services:
        try:
            before = accounts_for(services).set_role(name, role)
        except NoSuchUser as exc:
            raise CommandError(str(exc), ExitCode.FAILED) from None
        _audit(services, "role_changed", name, f"{before} -> {role}")
    click.echo(f"user {name}: {before} -> {role}", err=True)


@staff.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
def staff_passwd(name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (prompted); every session of theirs ends."""
    password = _read_password(password_stdin)
    with open_services() as services:
        try:
            accounts_for(services).set_password(name, password)
        except NoSuchUser as exc:
            raise CommandError(str(exc), ExitCode.FAILED) from None
        except WeakPassword as exc:
            raise failed(exc) from None
        _audit(services, "password_set", name)
    click.echo(f"password of {name} changed", err=True)


@staff.command("audit")
@click.option("--since", help="Only entries since: 30m, 24h, 7d, or an ISO date or time.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
def staff_audit(since: str | None, limit: int) -> None:
    """The staff audit trail, newest first: time, who, role, action, target, address, detail."""
    start = _since(since)
    with open_services() as services:
        entries = services.store.staff_audit.latest(limit, since=start)
    for entry in entries:
        click.echo(
            "\t".join(
                (
                    entry.at.isoformat(timespec="seconds"),
                    entry.actor,
                    entry.role or "-",
                    entry.action,
                    entry.target or "-",
                    entry.address or "-",
                    (entry.detail or "").replace("\n", " "),
                )
            )
        )
    click.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", err=True)


# -- the old name, kept hidden for one release ---------------------------------


@click.group("users", hidden=True)
def users() -> None:
    """Old name of intake staff (deprecated: kept for one release)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=_ROLE, default=ADMIN, show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
def users_add(name: str, role: str, password_stdin: bool) -> None:
    """Create the account NAME (admin unless --role: every right, as before roles)."""
    _add(name, role, password_stdin)


@users.command("list")
def users_list() -> None:
    """List accounts: name, creation date, role, state."""
    _list()


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable NAME and end their sessions."""
    _disable(name)
