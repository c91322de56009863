"""The phone line's commands.

- ``intake twilio-worker`` (Procfile: twilio) -> ``worker`` (recordings,
  photos, missed calls) until SIGINT or SIGTERM; ``--once`` does one pass;
- ``intake twilio-prompts``: every sentence the line speaks, per language,
  whether Cash Plus has recorded it and whether a native speaker has
  reviewed the language; ``--markdown`` prints the recording script
  (``channels/twilio/prompts/README.md``).
"""

from __future__ import annotations

import click
import httpx

from channels.twilio.audio import recording_script, recording_status
from channels.twilio.line import PhoneLine
from channels.twilio.texts import ivr_table
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


@click.command("twilio-prompts")
@click.option("--markdown", is_flag=True, help="Print the recording script (prompts/README.md).")
def twilio_prompts(markdown: bool) -> None:
    """List the phone line's sentences: recorded or spoken, reviewed or not."""
    table = ivr_table()
    if markdown:
        click.echo(recording_script(table), nl=False)
        return
    for tag, name, recorded in recording_status(table):
        review = "reviewed" if table.texts(tag).reviewed else "UNREVIEWED"
        source = "recorded" if recorded else "voice"
        click.echo(f"{tag:<4} {name:<17} {source:<9} {review}")
    unreviewed = table.unreviewed()
    if unreviewed:
        click.echo(f"not reviewed by a native speaker: {', '.join(unreviewed)}", err=True)
