"""The kit every ``intake`` command module is written with.

command module (``channels/*/cli.py``, ``gateway/*/cli.py``, the host's
``gateway/cli.py``) -> **commands** -> services, the store, the relay.

Exit codes follow sysexits (``ExitCode``); errors are one line on stderr
(``CommandError``). A command opens the process's services with
``open_services()``, runs a long loop with ``run_until_signal()``, and
publishes what a one-shot intake committed with ``publishing()``.
"""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from enum import IntEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from config.settings import ConfigError, Settings, get_settings
from gateway.lib.logs import setup_logging
from normalizer.errors import InputRejected, OurFailure, one_line

if TYPE_CHECKING:
    from gateway.lib.services import Services
    from router.relay import Relay

# The store, the services and the relay are imported where they are used:
# they bring SQLAlchemy and kombu, and ``intake --help`` must start without
# them (tests/unit/test_cli_startup_imports.py).


class ExitCode(IntEnum):
    """What ``intake`` exits with (README, "Exit codes")."""

    OK = 0
    FAILED = 1  # a check or part of the work failed, or a wait timed out
    USAGE = 64
    DATAERR = 65  # bad input data
    NOINPUT = 66  # an input file that cannot be read
    UNAVAILABLE = 69  # a peer (broker, IMAP server) unavailable
    SOFTWARE = 70  # a migration the database refused: running it again will not help
    TEMPFAIL = 75  # the database unreachable or refusing writes: try again
    CONFIG = 78  # a wrong setting, or a target not prepared for this version


class CommandError(click.ClickException):
    """One line on stderr and a meaningful exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = int(code)  # type: ignore[misc]  # click declares it per class


def old_name(command: click.Command, name: str) -> click.Command:
    """``command`` under the name it had before, hidden from help and marked deprecated.

    Kept for one release after a rename (CHANGELOG says which), so scripts
    and runbooks keep working while they are updated.
    """
    return click.Command(
        name,
        callback=command.callback,
        params=command.params,
        help=command.help,
        hidden=True,
        deprecated=f"It is now '{command.name}'.",
    )


def exit_code_for(exc: BaseException) -> ExitCode:
    """The one mapping of failures to exit codes (``normalizer.errors``)."""
    from router.broker import BrokerUnavailable

    if isinstance(exc, ConfigError):
        return ExitCode.CONFIG
    if isinstance(exc, InputRejected):
        return ExitCode.DATAERR
    if isinstance(exc, BrokerUnavailable):
        return ExitCode.UNAVAILABLE
    if isinstance(exc, OurFailure):
        return ExitCode.TEMPFAIL if exc.retryable else ExitCode.SOFTWARE
    return ExitCode.SOFTWARE


def failed(exc: BaseException, what: str = "") -> CommandError:
    """``exc`` as one line on stderr with its exit code: ``raise failed(exc) from None``."""
    return CommandError(f"{what}{': ' if what else ''}{exc}", exit_code_for(exc))


def settings_or_exit() -> Settings:
    """The process's settings, checked; a wrong one is exit 78 naming the variable."""
    try:
        settings = get_settings()
        if settings.database_url:
            # The store checks what it could open; with none set, nothing to import.
            from gateway.store import checked_settings

            checked_settings(settings)
        return settings
    except ConfigError as exc:
        raise CommandError(f"configuration error: {exc}", ExitCode.CONFIG) from None


@contextmanager
def open_services(*, read_only: bool = False) -> Iterator[Services]:
    """The process's services for the command's length; a store away is exit 75.

    ``read_only`` (a dry run): the store is opened without migrating it, makes no file
    and refuses every write (``open_store(read_only=True)``); a schema that is not this
    version's newest is exit 78, naming ``intake migrate``, rather than migrated.
    """
    from gateway.lib.services import build_services, read_only_services
    from gateway.store import StoreUnavailable, safe_database_url

    settings = settings_or_exit()
    setup_logging(settings.log_level)
    if read_only:
        _require_current_schema(settings)
    try:
        services = read_only_services(settings) if read_only else build_services(settings)
    except Exception as exc:
        raise CommandError(
            f"cannot open the store at {safe_database_url(settings)}: {one_line(exc)}",
            ExitCode.TEMPFAIL,
        ) from None
    try:
        yield services
    except StoreUnavailable as exc:
        raise failed(exc, "store unavailable") from None
    except (InputRejected, OurFailure) as exc:
        raise failed(exc) from None
    finally:
        services.close()


def _require_current_schema(settings: Settings) -> None:
    from gateway.store import StoreUnavailable, inspect_schema, safe_database_url

    try:
        state = inspect_schema(settings)
    except StoreUnavailable as exc:
        raise failed(exc, f"cannot read the store at {safe_database_url(settings)}") from None
    if not state.up_to_date:
        raise CommandError(
            f"store not ready for a read-only run: {state.describe()}", ExitCode.CONFIG
        )


def freeze_heap() -> None:
    """What a long-running process holds from its start, left out of later garbage collections.

    Modules, settings, the language models and word lists: millions of
    objects that live as long as the process. A full collection walked them
    all and stopped every thread for 110-240 ms under load (the p99 of an
    HTTP edge). Collected once here, then frozen (``gc.freeze``); what a
    request or a batch allocates later is collected as before.
    """
    gc.collect()
    gc.freeze()


def run_until_signal(loop: Callable[[threading.Event], None]) -> None:
    """Run ``loop(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    loop(stop)


@contextmanager
def publishing(services: Services, enabled: bool = True) -> Iterator[None]:
    """Publish the outbox while the body runs, then whatever it left, before returning.

    For the one-shot intake commands (``intake imap poll --once``): their
    complaints are on the broker when the command exits, as if a relay ran
    beside them. Publishing starts with the first committed batch, so the
    broker's confirms overlap with the intake. A broker that cannot be
    reached is an error (exit 69) only after the body ran: what it committed
    stays in the outbox for ``intake relay``.
    """
    from router.relay import build_relay

    if not enabled:
        yield
        return
    relay = build_relay(services.settings, services.store)
    stop = threading.Event()
    beside = threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True)
    beside.start()
    try:
        yield
    finally:
        stop.set()
        beside.join()
    drain_outbox(services, relay)


def drain_outbox(services: Services, relay: Relay) -> None:
    """Publish what the outbox holds now (``intake relay --once``); exit 69 on a broker failure."""
    from router.broker import describe

    try:
        result = relay.publish_pending()
    except Exception as exc:
        raise CommandError(
            f"broker {describe(services.settings.resolved_broker_url)} unavailable: "
            f"{type(exc).__name__}: {exc}; the complaints wait in the outbox",
            ExitCode.UNAVAILABLE,
        ) from None
    finally:
        relay.close()
    # All this relay published: with ``publishing``, its run beside the body too.
    click.echo(f"published {relay.published} message(s)", err=True)
    if not result.complete:
        problem = result.problem or "some messages were not confirmed"
        raise CommandError(f"{problem}; they stay in the outbox", ExitCode.UNAVAILABLE)


def parse_since(text: str) -> datetime:
    """``--since``: a date (midnight, local time) or an ISO 8601 time (local if naive)."""
    zone = ZoneInfo(settings_or_exit().timezone)
    try:
        if len(text) == 10:
            return datetime.combine(datetime.fromisoformat(text).date(), time(0), tzinfo=zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since: not a date or time: {text!r}", ExitCode.USAGE) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone).astimezone(UTC)
