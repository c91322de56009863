"""The web form's attachment checks are rationed (real poppler, qpdf, Pillow in the sandbox).

S3 of the December review: five crafted PDFs of 150,000 tiny objects each
cost 26 s of CPU in one post. Now a PDF's objects are counted in its bytes
first and an absurd count is refused before any process starts; the
sandboxed checks run in a small pool (a post waits a bounded time for a
slot, then is told to come back: 503) and each client address has an
hourly budget of them (429).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from channels.webform import attachments
from channels.webform.attachments import (
    FileRefused,
    InspectionBudgetSpent,
    Inspections,
    InspectionsBusy,
    charged_to,
    check_file,
)
from channels.webform.form import Submission, Upload, validate
from channels.webform.intake import form_limits
from config.settings import Settings
from normalizer.ocr import ScanLimits, ScanRejected, checks, inspect_scan
from normalizer.ocr.checks import pdf_object_count
from tests.peers import hostile, scans
from tests.peers.processes import IntakeProcesses
from tests.peers.webform import fresh_form, start_web, valid_fields


@pytest.fixture
def child_starts(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every sandboxed inspection started (the expensive path), by its command line."""
    real, started = checks.run_limited, []

    def counting(args: Any, *rest: Any, **options: Any) -> bytes:
        started.append(list(args))
        return real(args, *rest, **options)

    monkeypatch.setattr(checks, "run_limited", counting)
    return started


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inspections]:
    """This process's pool: two slots, a short wait, a budget a test may lower."""
    made = Inspections(workers=2, wait=0.5, seconds_per_hour=3600.0)
    monkeypatch.setattr(attachments, "_POOL", [made])
    yield made


def letter_pdf() -> bytes:
    return scans.text_pdf(scans.FRENCH_LETTER)


def submission(*files: tuple[str, bytes]) -> Submission:
    values = {
        "name": "Fatima",
        "phone": "0661234567",
        "email": "",
        "product": "",
        "transaction_reference": "",
        "text": "salam, la carte dyali tblokat f guichet",
        "preferred_language": "",
        "preferred_contact": "",
    }
    uploads = [Upload(name, data, "application/pdf") for name, data in files]
    return Submission(values=values, uploads=uploads)


def test_a_post_of_five_many_object_pdfs_is_refused_without_starting_a_process(
    settings: Settings, pool: Inspections, child_starts: list[list[str]]
) -> None:
    crafted = hostile.many_objects_pdf(150_000)
    limits = form_limits(settings)
    assert len(crafted) < limits.max_bytes  # under the size cap: only the count refuses it

    checked = validate(
        submission(*[(f"scan-{n}.pdf", crafted) for n in range(5)]), limits, client="c1"
    )

    assert [(error.field, error.code) for error in checked.errors] == [
        ("attachments", "file_unreadable")
    ] * 5
    assert checked.attachments == []
    assert child_starts == []  # not one sandboxed inspection
    assert pool.used("c1", time.monotonic()) == 0.0  # nor any of the client's budget
    with pytest.raises(FileRefused) as caught:
        check_file("scan.pdf", crafted, limits)
    assert caught.value.reason == "too_many_objects"
    with pytest.raises(ScanRejected) as rejected:
        inspect_scan(crafted, "scan.pdf", ScanLimits())
    assert rejected.value.code == "too_many_objects"
    assert rejected.value.params == {"count": 150_003, "limit": 20_000}
    assert "150003 objets" in rejected.value.message("fr")


def test_an_honest_pdf_is_inspected_in_the_sandbox_and_accepted(
    settings: Settings, pool: Inspections, child_starts: list[list[str]]
) -> None:
    checked = validate(submission(("lettre.pdf", letter_pdf())), form_limits(settings))
    assert checked.errors == []
    assert [item.content_type for item in checked.attachments] == ["application/pdf"]
    assert len(child_starts) == 1


def test_objects_packed_in_object_streams_are_counted() -> None:
    packed = b"%PDF-1.5\n5 0 obj\n<< /Type /ObjStm /N 90000 /First 10 /Length 3 >>\nstream\n"
    assert pdf_object_count(packed + b"abc\nendstream\nendobj\n") == 90_001
    assert pdf_object_count(letter_pdf()) < 20


def test_the_pool_bound_holds_one_more_check_waits_then_is_refused(
    settings: Settings, pool: Inspections, child_starts: list[list[str]]
) -> None:
    limits = form_limits(settings)
    with contextlib.ExitStack() as held:
        for _ in range(pool.workers):  # every slot taken by a check in progress
            held.enter_context(pool.slot(None))
        with pytest.raises(InspectionsBusy):
            check_file("lettre.pdf", letter_pdf(), limits)
        assert child_starts == []  # refused after its bounded wait, never started
    # Slots free again: the same check runs.
    assert check_file("lettre.pdf", letter_pdf(), limits) == "application/pdf"


def test_a_waiting_check_gets_the_slot_freed_within_its_wait(
    settings: Settings, pool: Inspections
) -> None:
    limits = form_limits(settings)
    freed = threading.Event()
    with contextlib.ExitStack() as held:
        for _ in range(pool.workers):
            held.enter_context(pool.slot(None))

        def free() -> None:
            held.close()
            freed.set()

        timer = threading.Timer(0.1, free)
        timer.start()
        assert check_file("lettre.pdf", letter_pdf(), limits) == "application/pdf"
        assert freed.is_set()
        timer.join()


def test_a_client_over_its_hourly_budget_is_refused_and_others_are_not(
    settings: Settings, pool: Inspections, child_starts: list[list[str]]
) -> None:
    pool.seconds_per_hour = 0.001  # one check spends it
    limits = form_limits(settings)
    first = validate(submission(("a.pdf", letter_pdf())), limits, client="client-a")
    assert first.errors == []
    with pytest.raises(InspectionBudgetSpent) as caught:
        validate(submission(("b.pdf", letter_pdf())), limits, client="client-a")
    assert caught.value.status == 429
    assert "too many attachment checks" in str(caught.value)
    assert len(child_starts) == 1  # the refused one was not inspected
    with charged_to("client-b"):
        assert check_file("c.pdf", letter_pdf(), limits) == "application/pdf"


def test_over_the_wire_a_client_past_its_budget_gets_the_429_page_and_keeps_its_text(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(intake_processes, settings, webform_inspection_seconds_per_hour=0.001)
    text = "Voici le reçu du transfert jamais arrivé à Agadir."
    answers = []
    with httpx.Client(base_url=web.url, timeout=60, follow_redirects=True) as client:
        for name in ("recu-1.pdf", "recu-2.pdf"):
            token = fresh_form(client)
            files = [("attachments", (name, letter_pdf(), "application/pdf"))]
            answers.append(client.post("/fr/", data=valid_fields(token, text=text), files=files))

    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].status_code == 429
    assert text in answers[1].text  # the customer's text comes back, nothing is lost
