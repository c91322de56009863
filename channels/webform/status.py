"""A customer's own view of a complaint: ``/{lang}/status/`` in the four languages.

browser --GET--> the lookup form (CSRF token) --POST reference + phone or
e-mail--> **guards** (CSRF, hourly lookups per address) -> ``find_status``
(the store's complaint, acknowledgement and case state; or a web form post
captured and not normalized yet) -> the state and deadlines, or "not found".

A post the form has answered is captured before a runner makes it a
complaint (``staged``): until then, or if the runner quarantined it, its
reference is shown as received with the dates its confirmation page gave,
the contact point checked against the captured post.

What the page shows is the complaint's state (received, acknowledged, in
progress, answer delayed, answered, closed) and its dates (received, the
acknowledgement and answer deadlines, the new deadline of an extension):
nothing the customer wrote, no name, no channel. The contact point typed
must be one the complaint holds (the phone in E.164, or the e-mail in lower
case); a wrong reference and a wrong contact point get the same page, so
the page tells a stranger nothing about which references exist. Each
address (an IPv6 client's whole /64) may look up ``MAX_LOOKUPS_PER_HOUR``
times an hour, and each reference be looked up
``MAX_LOOKUPS_PER_REFERENCE_HOUR`` times an hour from anywhere, whatever the
outcome, counted in the database like the form's limits.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from channels.webform.guard import COOKIE, FIELD, FormGuard
from channels.webform.i18n import UiLanguage
from channels.webform.intake import read_post
from channels.webform.pages import Pages
from gateway.lib.http.auth import limited_client
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.acks import SENT
from gateway.store.blobs import BlobChanged, BlobMissing
from gateway.store.captures import DONE, Captured
from normalizer.contract import Channel, ComplaintMessage, Customer
from normalizer.customer import contact_points, email_point, phone_point

log = logging.getLogger("intake.webform.status")

# Lookups per address and hour, found or not: enough for a family behind one
# address, too few to try references or phone numbers one by one.
MAX_LOOKUPS_PER_HOUR = 20
# Lookups of one reference an hour, from any address: a customer checks a few
# times; guessing the phone of a known reference needs millions of tries.
MAX_LOOKUPS_PER_REFERENCE_HOUR = 6
# What a reference looks like once typed in any case, with or without its hyphens.
REFERENCE = re.compile(r"CP-?([0-9A-Z]{4})-?([0-9A-Z]{4})")
MAX_FIELD = 254
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class PublicStatus:
    """What a customer may see of their complaint: its state and its dates, nothing else."""

    reference: str
    state: str  # received, acknowledged, in_progress, extended, answered, closed
    received_at: datetime
    ack_due_at: datetime
    acknowledged_at: datetime | None
    answer_due_at: datetime
    extended_until: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None


def clean_reference(typed: str) -> str | None:
    """``CP-XXXX-XXXX`` from what was typed (spaces, lower case, missing hyphens), else None."""
    text = "".join(typed.split()).upper()
    found = REFERENCE.fullmatch(text)
    return f"CP-{found.group(1)}-{found.group(2)}" if found else None


def contact_matches(customer: Customer, typed: str) -> bool:
    """Whether ``typed`` is the complaint's phone (any writing) or e-mail (any case)."""
    return _points_match(contact_points(customer), typed)


def _points_match(held: Sequence[str], typed: str) -> bool:
    wanted = {point for point in (phone_point(typed), email_point(typed)) if point}
    # Every pair compared in full: the time taken does not tell which part matched.
    matched = False
    for point in held:
        for candidate in wanted:
            matched |= hmac.compare_digest(point.encode(), candidate.encode())
    return matched


_STAND_IN = Customer(phone="+212600000000", email="stand-in@invalid")


def find_status(
    services: Services, typed_reference: str, typed_contact: str
) -> PublicStatus | None:
    """The complaint's public status, or None when the reference or the contact point is wrong."""
    reference = clean_reference(typed_reference[:MAX_FIELD])
    contact = typed_contact.strip()[:MAX_FIELD]
    if reference is None or not contact:
        return None
    found = services.store.complaints.get_by_reference(reference) or _pending_post(
        services, reference
    )
    # An unknown reference still compares the typed contact (against a stand-in
    # customer), so the two misses do the same work.
    if isinstance(found, Captured):
        held = _points_of_post(services, found)
    else:
        held = contact_points(found.customer if found is not None else _STAND_IN)
    if found is None or not _points_match(held, contact):
        return None
    if isinstance(found, Captured):
        return _received(found)
    return _complaint_status(services, found)


def _complaint_status(services: Services, message: ComplaintMessage) -> PublicStatus:
    store = services.store
    ack = store.acks.get(message.id)
    case = store.cases.state(message.reference)
    acknowledged_at = ack.sent_at if ack is not None and ack.status == SENT else None
    state = case.status if case is not None else "received"
    if state == "received" and acknowledged_at is not None:
        state = "acknowledged"
    return PublicStatus(
        reference=message.reference,
        state=state,
        received_at=message.received_at,
        ack_due_at=message.ack_due_at,
        acknowledged_at=acknowledged_at,
        answer_due_at=message.answer_due_at,
        extended_until=case.extended_until if case is not None else None,
        answered_at=case.answered_at if case is not None else None,
        closed_at=case.closed_at if case is not None else None,
    )


def _pending_post(services: Services, reference: str) -> Captured | ComplaintMessage | None:
    """A web form post captured under ``reference`` and not a complaint yet (or quarantined).

    A capture normalized since the first look is the complaint it became.
    """
    captures = services.store.captures
    captured = captures.by_reference(reference)
    if captured is None or captured.channel != Channel.WEBFORM.value:
        return None
    state = captures.state_of(captured.id)
    if state is None:
        return None
    if state[0] == DONE:
        return services.store.complaints.get_by_reference(reference)
    return captured


def _points_of_post(services: Services, captured: Captured) -> list[str]:
    """The phone and e-mail typed in a captured post, as contact points (none if unreadable)."""
    try:
        post = read_post(services.store.captures.data_of(captured), captured.content_type)
    except (BlobMissing, BlobChanged):  # erased with its quarantine item, or damaged
        return []
    typed = (phone_point(post.sub.get("phone")), email_point(post.sub.get("email")))
    return [point for point in typed if point is not None]


def _received(captured: Captured) -> PublicStatus:
    """A captured post as its confirmation page told it: received, with its dates."""
    return PublicStatus(
        reference=captured.reference,
        state="received",
        received_at=captured.received_at,
        ack_due_at=captured.ack_due_at,
        acknowledged_at=None,
        answer_due_at=captured.answer_due_at,
        extended_until=None,
        answered_at=None,
        closed_at=None,
    )


class StatusPages:
    """The lookup's GET and POST handlers, per language."""

    def __init__(self, services: Services, guard: FormGuard, pages: Pages, secure: bool) -> None:
        self.services = services
        self.guard = guard
        self.pages = pages
        self.secure = secure
        self.limit = services.store.rate_limiter(MAX_LOOKUPS_PER_HOUR)
        self.reference_limit = services.store.rate_limiter(MAX_LOOKUPS_PER_REFERENCE_HOUR)

    def _answer(self, html: str, status: int, nonce: str) -> HTMLResponse:
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="lax", secure=self.secure)
        if status == 429:
            response.headers["Retry-After"] = "3600"
        return response

    def _page(
        self,
        language: UiLanguage,
        request: Request,
        status: int = 200,
        *,
        found: PublicStatus | None = None,
        outcome: str | None = None,
        reference: str = "",
    ) -> HTMLResponse:
        nonce = request.cookies.get(COOKIE) or self.guard.new_nonce()
        html = self.pages.status(
            language, self.guard.issue(nonce), found=found, outcome=outcome, reference=reference
        )
        return self._answer(html, status, nonce)

    def show(self, language: UiLanguage) -> Handler:
        async def show_lookup(request: Request) -> Response:
            return self._page(language, request)

        return show_lookup

    def look_up(self, language: UiLanguage) -> Handler:
        async def look_up_status(request: Request) -> Response:
            form = await request.form()
            token = str(form.get(FIELD) or "")
            reference = str(form.get("reference") or "")[:MAX_FIELD]
            contact = str(form.get("contact") or "")
            if self.guard.check(token, request.cookies.get(COOKIE)) is None:
                return self._page(
                    language, request, 403, outcome="form_expired", reference=reference
                )
            key = self.guard.client_key(limited_client(request), "status")
            # Per reference too, whatever the address: someone who read a reference
            # (a letter, an SMS over a shoulder) cannot try phone numbers against it.
            cleaned = clean_reference(reference)
            reference_key = self.guard.client_key(cleaned or "-", "status-reference")
            try:
                allowed = await run_in_threadpool(self.limit.allow, key) and (
                    cleaned is None
                    or await run_in_threadpool(self.reference_limit.allow, reference_key)
                )
                if not allowed:
                    log.warning("status lookups limit reached for a client or a reference")
                    return self._page(
                        language, request, 429, outcome="rate_limited", reference=reference
                    )
                found = await run_in_threadpool(find_status, self.services, reference, contact)
            except StoreUnavailable:
                return self._page(
                    language, request, 503, outcome="unavailable", reference=reference
                )
            if found is None:
                return self._page(language, request, 404, outcome="not_found", reference=reference)
            return self._page(language, request, found=found)

        return look_up_status
