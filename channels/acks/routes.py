"""Letters waiting for the mailroom: list, download, mark posted (partner-API keys).

ack worker -> letter PDF in the blob store, row ``queued`` -> **these routes**
-> the mailroom page (another issue) or a script prints and posts it ->
``POST .../posted`` -> ``ack.sent`` published with the posting time.

- ``GET /v1/acks/letters``: queued letters, oldest first.
- ``GET /v1/acks/letters/{id}/pdf``: the letter to print.
- ``POST /v1/acks/letters/{id}/posted``: it went out today; idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from channels.acks.acknowledger import Acknowledger
from channels.acks.policy import LETTER, Plan
from channels.acks.sending import Sent
from channels.acks.store import QUEUED, SENT, AckRecord
from channels.acks.texts import languages_for
from channels.api import require_client
from gateway.errors import ApiError
from gateway.services import Services
from gateway.store.apikeys import ApiClient

# Module level: FastAPI resolves the (postponed) annotations in module globals.
Client = Annotated[ApiClient, Depends(require_client)]


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


def build_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1/acks", tags=["acknowledgements"])
    acknowledger = Acknowledger(services, senders={})

    def letter(ack_id: str) -> AckRecord:
        record = acknowledger.acks.by_id(ack_id)
        if record is None or record.method != LETTER:
            raise ApiError(404, "not_found", f"no acknowledgement letter {ack_id}")
        return record

    @router.get("/letters", response_model=list[LetterOut], responses={401: {}})
    async def list_letters(_client: Client) -> list[LetterOut]:
        records = await run_in_threadpool(acknowledger.acks.letters, QUEUED)
        return [_out(record) for record in records]

    @router.get(
        "/letters/{ack_id}/pdf",
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}, 401: {}, 404: {}},
    )
    async def letter_pdf(ack_id: str, _client: Client) -> Response:
        record = await run_in_threadpool(letter, ack_id)
        data = await run_in_threadpool(services.store.blobs.get, str(record.document))
        filename = f"accuse-reception-{record.reference}.pdf"
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )

    @router.post(
        "/letters/{ack_id}/posted", response_model=LetterOut, responses={401: {}, 404: {}, 409: {}}
    )
    async def letter_posted(ack_id: str, _client: Client) -> LetterOut:
        record = await run_in_threadpool(letter, ack_id)
        if record.status == SENT:
            return _out(record)
        message = await run_in_threadpool(
            services.store.complaints.get_by_reference, record.reference
        )
        if message is None or record.status != QUEUED:
            raise ApiError(409, "not_queued", f"letter {ack_id} is {record.status}, not queued")
        pdf = await run_in_threadpool(services.store.blobs.get, str(record.document))
        plan = Plan(LETTER, str(record.recipient), languages_for(message))
        sent = Sent(evidence=pdf, content_type="application/pdf", document=record.document)
        updated = await run_in_threadpool(
            acknowledger.record_sent, message, plan, sent, datetime.now(UTC)
        )
        return _out(updated)

    return router
