"""Checks on the files a customer attaches to the web form: the scanned letters' own.

form POST -> **each file checked here** -> ``AttachmentDraft`` -> hand off.

The checks are ``normalizer.ocr.inspect_scan``, the ones the mailroom's
scans go through: the type sniffed from the bytes (PDF, JPEG, PNG, TIFF; an
extension that lies is refused), the size cap, a PDF's object count read
from its bytes, then a sandboxed look at the structure (pages, pixels per
page, encrypted or scripted PDF, a truncated image). Here only its refusal
codes are turned into the form's own error codes, whose sentences exist in
the four languages of the page.

The sandboxed look costs a process and up to seconds of CPU per file, and
anyone may post the form, so it is rationed (``Inspections``): at most
``INTAKE_WEBFORM_INSPECTION_WORKERS`` run at once in a process, a post
waits ``INTAKE_WEBFORM_INSPECTION_WAIT`` seconds at most for one
(``InspectionsBusy``, our failure: the form answers 503 with Retry-After),
and one client address may spend ``INTAKE_WEBFORM_INSPECTION_SECONDS_PER_HOUR``
seconds of them per hour (``InspectionBudgetSpent``). The client is the
keyed hash the form already computes, given by ``charged_to`` around the
validation.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from config.settings import ConfigError, Settings, get_settings
from normalizer.errors import InputRejected, OurFailure
from normalizer.ocr import ScanLimits, ScanRejected
from normalizer.ocr.checks import cheap_checks, inspect_structure

ACCEPTED_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/tiff"})
# Refusal code of the scan checks -> error code of the form (texts/<lang>.json).
FORM_ERRORS: dict[str, str] = {
    "unsupported_type": "file_type",
    "type_mismatch": "file_type",
    "too_large": "file_too_large",
    "too_many_pages": "file_too_many_pages",
    "too_many_pixels": "file_too_many_pixels",
    "encrypted_pdf": "file_protected",
    "pdf_javascript": "file_unsafe",
    "unreadable": "file_unreadable",
    "too_costly": "file_unreadable",
    "too_many_objects": "file_unreadable",
    "empty": "file_unreadable",
}
BUDGET_WINDOW = 3600.0


class FileRefused(InputRejected, ValueError):
    """A file the customer must replace; ``code`` names the texts entry, ``reason`` the
    scan checks' own refusal code (``too_many_objects``...)."""

    def __init__(self, code: str, reason: str | None = None, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason or code
        self.params = params


class InspectionsBusy(OurFailure):
    """Every inspection slot stayed taken for the whole wait: try again shortly (503)."""

    retry_after = 30


class InspectionBudgetSpent(InputRejected):
    """This client used its hour of attachment checks (429)."""

    status = 429
    retry_after = int(BUDGET_WINDOW)

    def __init__(self) -> None:
        super().__init__(
            "too many attachment checks from this address in the last hour; try again later"
        )


@dataclass
class Inspections:
    """The bounded pool of attachment checks and each client's hourly budget (one process)."""

    workers: int = 2
    wait: float = 10.0
    seconds_per_hour: float = 120.0
    slots: threading.BoundedSemaphore = field(init=False)
    spent: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(self.workers)

    @classmethod
    def from_settings(cls, settings: Settings) -> Inspections:
        return cls(
            workers=settings.webform_inspection_workers,
            wait=settings.webform_inspection_wait,
            seconds_per_hour=settings.webform_inspection_seconds_per_hour,
        )

    def used(self, client: str, now: float) -> float:
        with self.lock:
            window = self.spent.get(client)
            if window is None:
                return 0.0
            while window and window[0][0] <= now - BUDGET_WINDOW:
                window.popleft()
            if not window:
                del self.spent[client]
            return sum(seconds for _, seconds in window)

    def charge(self, client: str, seconds: float, now: float) -> None:
        with self.lock:
            self.spent.setdefault(client, deque()).append((now, seconds))

    @contextlib.contextmanager
    def slot(self, client: str | None) -> Iterator[None]:
        """One inspection: within the client's budget, in a free slot, its time charged."""
        if client is not None and self.used(client, time.monotonic()) >= self.seconds_per_hour:
            raise InspectionBudgetSpent()
        if not self.slots.acquire(timeout=self.wait):
            raise InspectionsBusy("every attachment check is taken; try again shortly")
        started = time.monotonic()
        try:
            yield
        finally:
            self.slots.release()
            if client is not None:
                self.charge(client, time.monotonic() - started, time.monotonic())


_CLIENT: ContextVar[str | None] = ContextVar("webform_inspection_client", default=None)
_POOL: list[Inspections] = []
_POOL_LOCK = threading.Lock()


def inspections() -> Inspections:
    """This process's pool, from its settings (``INTAKE_WEBFORM_INSPECTION_*``)."""
    with _POOL_LOCK:
        if not _POOL:
            try:
                settings = get_settings()
            except ConfigError:
                settings = Settings()
            _POOL.append(Inspections.from_settings(settings))
        return _POOL[0]


@contextlib.contextmanager
def charged_to(client: str | None) -> Iterator[None]:
    """The checks run within the block are charged to ``client`` (the form's keyed hash)."""
    token = _CLIENT.set(client)
    try:
        yield
    finally:
        _CLIENT.reset(token)


def check_file(name: str, data: bytes, limits: ScanLimits) -> str:
    """The sniffed type of an acceptable file, or ``FileRefused`` saying why not.

    ``InspectionsBusy`` or ``InspectionBudgetSpent`` when it cannot be checked now.
    """
    try:
        # Size, type and a PDF's object count first: no slot, no budget, no process.
        mime, kind = cheap_checks(data, name, limits)
        with inspections().slot(_CLIENT.get()):
            return inspect_structure(data, mime, kind, limits).mime
    except ScanRejected as exc:
        code = FORM_ERRORS.get(exc.code, "file_unreadable")
        raise FileRefused(
            code, exc.code, max_mb=megabytes(limits.max_bytes), max=limits.max_pages
        ) from None


def megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return f"{value:.0f}" if value >= 1 else f"{value:.1f}"
