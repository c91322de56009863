"""An OCR worker (``channels.letters.worker.work``) in a thread, for as long as a block runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from channels.letters.worker import work
from gateway.services import Services


@contextmanager
def ocr_worker(services: Services) -> Iterator[threading.Thread]:
    """Start one worker; at the end of the block, stop it and wait for it (60 s at most)."""
    stop = threading.Event()
    thread = threading.Thread(target=work, args=(services, stop), daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=60)
