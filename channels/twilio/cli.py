"""``intake twilio-worker``: the phone line's downloads and missed calls (Procfile: twilio).

``intake twilio-worker`` -> **cli** -> ``worker`` (recordings, photos,
missed calls) until SIGINT or SIGTERM; ``--once`` does one pass and exits.
"""

from __future__ import annotations

import click
import httpx

from channels.twilio.line import PhoneLine
from channels.twilio.worker import HTTP_TIMEOUT, run_worker, work_once
from gateway.lib.commands import open_services, run_until_signal


@click.command("twilio-worker")
@click.option("--once", is_flag=True, help="One pass (downloads due now, missed calls), then exit.")
def twilio_worker(once: bool) -> None:
    """Download call recordings and message photos; publish missed calls."""
    with open_services() as services:
        if once:
            with httpx.Client(timeout=HTTP_TIMEOUT) as client:
                done = work_once(PhoneLine.of(services), client)
            click.echo(f"did {done} thing(s)", err=True)
            return
        run_until_signal(lambda stop: run_worker(services, stop))
