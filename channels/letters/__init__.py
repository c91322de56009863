"""Postal letters: the mailroom upload page, the upload API, the scanner hot folder, OCR.

Flow: a channel edge (``page``, ``api``, ``hotfolder``) hands the scans of
one letter to ``intake.accept_letter``: type and safety checks
(``normalizer.ocr.checks``), then the scans, the complaint (its outbox row
held) and a ``pending`` row in the letters table, committed before the
edge answers. The OCR ``worker`` takes letters from that table, reads them
in a sandboxed job and releases the complaint with its text. A refused
letter waits in quarantine; ``replay`` runs it through the same path once
the cause is fixed.

The component (routes, workers, commands, replay) is ``ADAPTER`` below; the
letters table and its queue are the store's (``gateway.store.letters``).
"""

from __future__ import annotations

from fastapi import APIRouter

from channels.letters import api, page
from channels.letters.cli import letters, ocr_worker, run_letter_workers
from channels.letters.replay import replay_letter
from config.settings import Settings
from gateway.lib.component import Component
from gateway.lib.services import Services


def build_routes(services: Services) -> APIRouter:
    router = APIRouter()
    router.include_router(api.build_router(services))
    router.include_router(page.build_router(services))
    return router


# One upload carries every page of a letter, each page file up to
# INTAKE_LETTER_MAX_BYTES; the per-file and per-page checks do the rest.
_FILES_PER_UPLOAD = 4


def body_limits(settings: Settings) -> dict[str, int]:
    limit = settings.letter_max_bytes * _FILES_PER_UPLOAD
    return {"/v1/letters": limit, "/letters/upload": limit}


ADAPTER = Component(
    name="letters",
    routes=build_routes,
    worker=run_letter_workers,
    commands=(letters, ocr_worker),
    body_limits=body_limits,
    # Uploads of up to 4 x 50 MB: no byte read before the key or the session is known.
    credentials_first={"/v1/letters": "client:letters:write", "/letters/upload": "staff"},
    # A refused letter is checked and recorded again, all its files together.
    replay=replay_letter,
    replays=("letter",),
)
