"""Shell command of case handling: ``intake case-worker`` (Procfile process ``cases``)."""

from __future__ import annotations

import click

from gateway.lib.commands import CommandError, ExitCode, open_services, run_until_signal


@click.command("case-worker")
def case_worker() -> None:
    """Record status reports from the complaints.status queue and send notices until SIGINT
    or SIGTERM."""
    from gateway.cases.worker import CaseWorker

    with open_services() as services:
        try:
            worker = CaseWorker(services)
        except ValueError as exc:  # a malformed relay URL, named by the error
            raise CommandError(f"configuration error: {exc}", ExitCode.CONFIG) from None
        run_until_signal(worker.run)


COMMANDS = (case_worker,)
