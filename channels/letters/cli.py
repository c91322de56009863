"""``intake letters watch|import DIR`` and ``intake ocr-worker`` (Procfile ``ocr``)."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from channels.letters.hotfolder import import_folder, watch
from channels.letters.worker import run_ocr_workers
from gateway.lib.commands import CommandError, ExitCode, open_services, run_until_signal
from gateway.lib.services import Services

_DIR = click.Path(file_okay=False, path_type=Path)


@click.group("letters")
def letters() -> None:
    """Postal letters: the scanner's hot folder and backlog imports."""


@letters.command("watch")
@click.argument("folder", type=_DIR)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds a file must stay unchanged before it is read.",
)
def letters_watch(folder: Path, settle: float) -> None:
    """Turn each file the scanner writes into FOLDER into a letter (until stopped)."""
    with open_services() as services:
        run_until_signal(lambda stop: watch(services, folder, stop, settle))


@letters.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def letters_import(folder: Path) -> None:
    """Turn every file in FOLDER into a letter, once, with a progress bar."""
    from tqdm import tqdm

    with open_services() as services:
        outcomes = import_folder(
            services, folder, lambda items: tqdm(list(items), unit="file", desc="letters")
        )
    counts = {
        status: sum(1 for o in outcomes if o.status == status)
        for status in ("done", "rejected", "retry")
    }
    click.echo(
        f"{counts['done']} letter(s) recorded, {counts['rejected']} refused "
        f"(see {folder / 'rejected'}), {counts['retry']} left to retry",
        err=True,
    )
    if counts["retry"]:
        raise CommandError(
            "some files could not be recorded; run the import again", ExitCode.FAILED
        )


@click.command("ocr-worker")
@click.option("--workers", type=click.IntRange(min=1), help="Default: INTAKE_OCR_WORKERS.")
def ocr_worker(workers: int | None) -> None:
    """Read letters waiting for OCR and release their complaints (Procfile: ocr)."""
    with open_services() as services:
        run_until_signal(lambda stop: run_ocr_workers(services, stop, workers))


def run_letter_workers(services: Services, stop: threading.Event) -> None:
    """The channel's worker in ``intake run``: OCR workers, and the hot folder if set."""
    folder = services.settings.letter_hot_folder
    if folder:
        threading.Thread(
            target=watch, args=(services, Path(folder), stop), name="hotfolder", daemon=True
        ).start()
    run_ocr_workers(services, stop)
