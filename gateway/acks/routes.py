"""Letters waiting for the mailroom, for partner scripts: list, download, mark posted.

ack worker -> letter PDF in the blob store, row ``queued`` -> the mailroom
page (``pages``: ``/letters/acks``, staff session) or **these routes**
(partner API key that reads all complaints, ``intake api-key create
--read-all``) -> ``Mailroom`` -> ``POST .../posted`` -> ``ack.sent``
published with the posting time. The letters carry every customer's name and postal address,
and ``posted`` publishes the proof that a letter went out: a key that reads
only its own complaints gets 404 here, as for another partner's complaint.

- ``GET /v1/acks/letters``: queued letters, oldest first.
- ``GET /v1/acks/letters/{id}/pdf``: the letter to print.
- ``POST /v1/acks/letters/{id}/posted``: it went out today; idempotent.

``mailroom_errors`` and ``pdf_response`` say the same things the same way
on the staff page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from gateway.acks.mailroom import ComplaintMissing, NoSuchLetter, NotQueued, mailroom_for
from gateway.lib.http.auth import require_client
from gateway.lib.http.errors import ApiError
from gateway.lib.services import Services
from gateway.store.acks import AckRecord
from gateway.store.apikeys import ApiClient


async def require_reader_of_all(
    request: Request, client: Annotated[ApiClient, Depends(require_client)]
) -> ApiClient:
    """A key created ``--read-all``, or 404 (said as for an unknown letter: nothing leaks)."""
    if not client.reads_all:
        ack_id = request.path_params.get("ack_id")
        what = f"no acknowledgement letter {ack_id}" if ack_id else "no acknowledgement letters"
        raise ApiError(404, "not_found", what)
    return client


# Module level: FastAPI resolves the (postponed) annotations in module globals.
Client = Annotated[ApiClient, Depends(require_reader_of_all)]


class LetterOut(BaseModel):
    id: str
    reference: str
    status: str
    queued_at: datetime
    sent_at: datetime | None
    pdf_url: str


def _out(record: AckRecord) -> LetterOut:
    return LetterOut(
        id=record.id,
        reference=record.reference,
        status=record.status,
        queued_at=record.created_at,
        sent_at=record.sent_at,
        pdf_url=f"/v1/acks/letters/{record.id}/pdf",
    )


@contextmanager
def mailroom_errors() -> Iterator[None]:
    """The mailroom's refusals in HTTP terms: unknown letter 404, not queued 409.

    A letter whose complaint is missing is our fault, and not one a retry mends: 500.
    """
    try:
        yield
    except NoSuchLetter as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except NotQueued as exc:
        raise ApiError(409, "not_queued", str(exc)) from None
    except ComplaintMissing as exc:
        raise ApiError(500, "complaint_missing", str(exc)) from None


def pdf_response(data: bytes, name: str) -> Response:
    """A letter to open in the browser's viewer and print; never cached (it holds an address)."""
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{name}.pdf"',
            "Cache-Control": "no-store",
        },
    )


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1/acks", tags=["acknowledgements"])
    mailroom = mailroom_for(services)

    @router.get("/letters", response_model=list[LetterOut], responses={401: {}, 404: {}})
    async def list_letters(_client: Client) -> list[LetterOut]:
        letters = await run_in_threadpool(mailroom.queued, datetime.now(UTC))
        return [_out(letter.record) for letter in letters]

    @router.get(
        "/letters/{ack_id}/pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}, 401: {}, 404: {}},
    )
    async def letter_pdf(ack_id: str, _client: Client) -> Response:
        with mailroom_errors():
            record, data = await run_in_threadpool(mailroom.pdf, ack_id)
        return pdf_response(data, f"accuse-reception-{record.reference}")

    @router.post(
        "/letters/{ack_id}/posted",
        response_model=LetterOut,
        responses={401: {}, 404: {}, 409: {}, 500: {}},
    )
    async def letter_posted(ack_id: str, _client: Client) -> LetterOut:
        with mailroom_errors():
            record = await run_in_threadpool(mailroom.mark_posted, ack_id, datetime.now(UTC))
        return _out(record)

    return router
