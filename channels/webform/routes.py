"""HTTP edge of the public form: ``/`` (French), ``/ar/``, ``/en/``, ``/es/``.

browser --GET--> page with a CSRF token --POST--> **guards** (a free slot
among ``INTAKE_WEBFORM_MAX_CONCURRENT_POSTS``, then from the body's head
alone: CSRF, flood guard) -> the rest of the body to disk (size cap) ->
honeypot -> validation -> complaint limit -> ``staged.capture_post`` (the
raw body, its receipt time, reference and deadlines in one group commit) ->
confirmation page with the reference ... a normalizer runner
(``staged.normalize_webform_captures``) records the complaint under it.

Past the per-address limits (many customers behind one carrier NAT), a
post whose browser solved the proof of work of its token (``guard.work_done``)
counts against that token's own hourly budget instead of getting a 429; its
attachment checks are charged to the token too. One address may open only
``INTAKE_WEBFORM_MAX_TOKENS_PER_ADDRESS`` token budgets an hour (a script
would otherwise get a fresh one for one GET and a few milliseconds of work).

A body that does not come in time (``INTAKE_WEBFORM_BODY_TIMEOUT``, for its
head, then for each chunk) gets a 408 page and the connection is closed,
freeing its slot.

Every answer is a page in the customer's language, never JSON: errors go
back to the form with what was typed (422, 403, 429, 413) and the names of
the files to attach again, our own failures are a 503 page with
``Retry-After`` and nothing recorded. The form enforces its own body cap
(``body``), so the gateway's JSON 413 never answers a customer. The raw multipart
body as received is the evidence; a refused submission is quarantined with
its reason, as its head only (the store's ``head_only``). A reloaded or
double-clicked POST carries the same token nonce and content, so it finds
the first capture (or the complaint already recorded): same reference.
Nothing is normalized here: the page answers once the capture is durable.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from channels.webform.attachments import InspectionBudgetSpent, InspectionsBusy, megabytes
from channels.webform.body import (
    PostBody,
    SlowBody,
    SpooledBody,
    max_body_bytes,
    parse_form,
    parse_spooled,
    uploads_of,
)
from channels.webform.form import FieldError, Submission, validate
from channels.webform.guard import COOKIE, FIELD, POW_FIELD, FormGuard, work_done
from channels.webform.i18n import BY_CODE, DEFAULT, HERE, LANGUAGES, UiLanguage
from channels.webform.intake import form_input, form_limits
from channels.webform.pages import Notice, Pages
from channels.webform.staged import capture_post
from channels.webform.status import StatusPages
from config.settings import Settings
from gateway.lib.http.auth import limited_client
from gateway.lib.http.errors import OWN_LIMIT
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.intake import RefusedHead
from normalizer.contract import Channel

log = logging.getLogger("intake.webform")

LANGUAGE_COOKIE = "cp_lang"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
RETRY_AFTER_SECONDS = "30"
ASSET_TYPES = {"form.css": "text/css; charset=utf-8", "form.js": "text/javascript; charset=utf-8"}
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Admitted:
    """A submission past the guards: its raw body (the evidence, spooled) and who sent it.

    ``client`` counts every post (flood guard), ``complainant`` the complaints
    recorded: two keyed hashes of the same address. ``token_key`` is the
    token's own budget, used instead of the address's when ``by_token`` (the
    address is over its limits and the browser did the proof of work).
    ``worked``: the post carries a valid proof for a token budget its address
    was allowed to open (``WebForm._token_opened``).
    """

    body: SpooledBody
    content_type: str
    sub: Submission
    nonce: str
    client: str
    complainant: str
    token_key: str
    worked: bool
    by_token: bool = False


class WebForm:
    """The form's state for one process: guards, limiter, pages, limits."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.services = services
        self.guard = FormGuard.from_secret(
            settings.session_secret.get_secret_value(), settings.session_max_age
        )
        self.complaint_limit = services.store.rate_limiter(settings.webform_max_per_hour)
        # Every complaint is also a post: a flood guard below the complaint
        # limit would lower that limit in disguise.
        posts = max(settings.webform_max_posts_per_hour, settings.webform_max_per_hour)
        self.flood_guard = services.store.rate_limiter(posts)
        # A carrier NAT: past the address's limits, a token that did the work
        # has budgets of its own (S20).
        self.pow_bits = settings.webform_pow_bits
        self.token_posts = services.store.rate_limiter(settings.webform_max_posts_per_token)
        self.token_complaints = services.store.rate_limiter(settings.webform_max_per_token)
        # A token budget costs a script one GET (a new cookie nonce) and ~2**bits
        # hashes (milliseconds in native code), so one address may open only so
        # many an hour: ``token_opened`` marks a token seen (one per token an hour,
        # so ``within`` is "not seen yet"), ``token_allowance`` counts the tokens
        # each address opened. See ``_token_opened``.
        self.token_opened = services.store.rate_limiter(1)
        self.token_allowance = services.store.rate_limiter(settings.webform_max_tokens_per_address)
        self.body_timeout = settings.webform_body_timeout
        self.max_posts = settings.webform_max_concurrent_posts
        self.in_flight = 0
        self.head_bytes = settings.quarantine_head_bytes
        self.limits = form_limits(settings)
        self.max_body = max_body_bytes(settings)
        self.pages = Pages(settings.timezone, self.limits.max_bytes)
        self.secure_cookies = settings.public_base_url.startswith("https://")

    # -- answers ------------------------------------------------------------
    def page(
        self,
        language: UiLanguage,
        request: Request,
        status: int = 200,
        *,
        sub: Submission | None = None,
        errors: Sequence[FieldError] = (),
        notice: str | None = None,
        work: bool = False,
        **params: object,
    ) -> HTMLResponse:
        """The form; ``work``: its script is to solve the token's proof of work (a 429)."""
        nonce = request.cookies.get(COOKIE) or self.guard.new_nonce()
        html = self.pages.form(
            language,
            self.guard.issue(nonce),
            pow_bits=self.pow_bits if work else 0,
            values=sub.values if sub else None,
            errors=errors,
            notice=Notice(notice, params) if notice else None,
            # A browser never keeps chosen files across a page: say which to attach again.
            reattach=[upload.name for upload in sub.uploads] if sub else (),
        )
        response = HTMLResponse(html, status_code=status)
        self._cookies(response, nonce, language)
        if status in (429, 503):
            response.headers["Retry-After"] = "3600" if status == 429 else RETRY_AFTER_SECONDS
        return response

    def _cookies(self, response: Response, nonce: str, language: UiLanguage) -> None:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie"
        response.set_cookie(
            COOKIE, nonce, httponly=True, samesite="lax", secure=self.secure_cookies
        )
        response.set_cookie(
            LANGUAGE_COOKIE,
            language.code,
            max_age=LANGUAGE_COOKIE_AGE,
            samesite="lax",
            secure=self.secure_cookies,
        )

    # -- GET ----------------------------------------------------------------
    def show(self, language: UiLanguage) -> Handler:
        async def show_form(request: Request) -> Response:
            remembered = BY_CODE.get(request.cookies.get(LANGUAGE_COOKIE, ""))
            if language is DEFAULT and remembered and remembered is not DEFAULT:
                redirect = RedirectResponse(remembered.path, status_code=303)
                redirect.headers["Vary"] = "Cookie"
                return redirect
            return self.page(language, request)

        return show_form

    # -- POST ---------------------------------------------------------------
    def submit(self, language: UiLanguage) -> Handler:
        async def submit_form(request: Request) -> Response:
            if self.in_flight >= self.max_posts:
                # Before the body is read: a flood of posts queues nowhere.
                log.warning("web form busy: %s posts in progress", self.in_flight)
                return self.page(language, request, 503, notice="unavailable")
            self.in_flight += 1
            admitted: Admitted | None = None
            try:
                outcome = await self._admit(language, request)
                if isinstance(outcome, Response):
                    return outcome
                admitted = outcome
                return await self._record(language, request, admitted)
            except Exception as exc:
                # Our failure: nothing recorded, the customer's text comes back.
                if not isinstance(exc, StoreUnavailable):
                    log.exception("web form submission failed")
                sub = admitted.sub if admitted else None
                return self.page(language, request, 503, sub=sub, notice="unavailable")
            finally:
                self.in_flight -= 1
                if admitted is not None:
                    admitted.body.close()

        return submit_form

    async def _admit(self, language: UiLanguage, request: Request) -> Admitted | Response:
        """The guards, cheapest first, each before more of the body is read.

        The head (``FIELDS_BYTES``): size declared, form syntax, CSRF token,
        flood guard. Only then the rest, to a spooled file: size, files.
        """
        post = PostBody(request, self.max_body, self.body_timeout)
        head = await self._read_head(language, request, post)
        if isinstance(head, Response):
            return head
        try:
            head_form = await parse_form(request, head)
        except HTTPException:
            return self.page(language, request, 400, notice="rejected")
        typed = Submission.from_form(head_form, [])
        token = str(head_form.get(FIELD) or "")
        nonce = self.guard.check(token, request.cookies.get(COOKIE))
        if nonce is None:
            return self.page(language, request, 403, sub=typed, notice="form_expired")
        address = limited_client(request)
        client = self.guard.client_key(address)
        token_key = self.guard.client_key(nonce, "token")
        proof = work_done(token, str(head_form.get(POW_FIELD) or ""), self.pow_bits)
        guarded = await self._flood_guard(language, request, typed, (client, token_key, proof))
        if isinstance(guarded, Response):
            return guarded
        worked = guarded
        read = await self._read_rest(language, request, post, typed)
        if isinstance(read, Response):
            return read
        spooled, sub = read
        return Admitted(
            body=spooled,
            content_type=request.headers.get("content-type", "multipart/form-data"),
            sub=sub,
            nonce=nonce,
            client=client,
            complainant=self.guard.client_key(address, "complaint"),
            token_key=token_key,
            worked=worked,
        )

    async def _read_head(
        self, language: UiLanguage, request: Request, post: PostBody
    ) -> bytes | Response:
        """The body's head, or the page when it is declared too large or does not come in time."""
        try:
            head = await post.read_head()
        except SlowBody:
            return self._too_slow(language, request, None)
        if post.declared_over:
            return await self._too_large(language, request, head)
        return head

    async def _read_rest(
        self, language: UiLanguage, request: Request, post: PostBody, typed: Submission
    ) -> tuple[SpooledBody, Submission] | Response:
        """The whole body spooled (size cap) and parsed, or the page saying why not."""
        try:
            spooled = await post.spool_rest()
        except SlowBody:
            return self._too_slow(language, request, typed)
        if spooled is None:
            return await self._too_large(language, request, post.head)
        try:
            form = await parse_spooled(request, spooled)
            return spooled, Submission.from_form(form, await uploads_of(form))
        except HTTPException:
            spooled.close()
            return self.page(language, request, 400, sub=typed, notice="rejected")
        except BaseException:
            spooled.close()
            raise

    async def _flood_guard(
        self,
        language: UiLanguage,
        request: Request,
        typed: Submission,
        keys: tuple[str, str, bool],
    ) -> Response | bool:
        """The 429 (or 503) page when this post may not go on, else whether it ``worked``.

        ``keys``: the address's and the token's keys, and whether the post
        carries a valid proof of work; that proof counts only for a token
        budget the address may open (``_token_opened``).
        """
        client, token_key, proof = keys
        try:
            worked = proof and await self._token_opened(client, token_key)
            if await self._post_allowed(client, token_key, worked):
                return worked
            work = not proof and await self._work_may_help(client, token_key)
        except StoreUnavailable:
            return self.page(language, request, 503, sub=typed, notice="unavailable")
        log.warning("web form flood guard reached for a client")
        return self.page(language, request, 429, sub=typed, notice="rate_limited", work=work)

    async def _token_opened(self, client: str, token_key: str) -> bool:
        """Whether this token's budget is open: seen this hour, or opened now within the allowance.

        A token not seen in the last hour takes one of its address's
        ``INTAKE_WEBFORM_MAX_TOKENS_PER_ADDRESS``; beyond them its proof buys
        nothing. Two first posts of one token at the same instant may both
        take one: that only costs the address (the flood guard bounds it).
        """
        seen_key = self.guard.client_key(token_key, "token-seen")
        if not await run_in_threadpool(self.token_opened.within, seen_key):
            return True  # already opened this hour
        allowance_key = self.guard.client_key(client, "pow")
        if not await run_in_threadpool(self.token_allowance.allow, allowance_key):
            log.warning("web form token allowance spent for a client")
            return False
        await run_in_threadpool(self.token_opened.record, seen_key)
        return True

    async def _work_may_help(self, client: str, token_key: str) -> bool:
        """Whether a proof of work on this token could still open its budget (the 429 asks it)."""
        if self.pow_bits <= 0:
            return False
        seen_key = self.guard.client_key(token_key, "token-seen")
        if not await run_in_threadpool(self.token_opened.within, seen_key):
            return True
        return await run_in_threadpool(
            self.token_allowance.within, self.guard.client_key(client, "pow")
        )

    async def _post_allowed(self, client: str, token_key: str, worked: bool) -> bool:
        """The address's flood guard, or past it the token's own budget if it did the work."""
        if await run_in_threadpool(self.flood_guard.allow, client):
            return True
        return worked and await run_in_threadpool(self.token_posts.allow, token_key)

    async def _too_large(self, language: UiLanguage, request: Request, head: bytes) -> Response:
        """The size error on the form, with the fields in the body's head (files are lost)."""
        try:
            sub: Submission | None = Submission.from_form(await parse_form(request, head), [])
        except HTTPException:
            sub = None  # the part read is not even a form: nothing to give back
        mb = megabytes(self.max_body)
        return self.page(language, request, 413, sub=sub, notice="request_too_large", max_mb=mb)

    def _too_slow(self, language: UiLanguage, request: Request, sub: Submission | None) -> Response:
        """The 408 page for a body that did not come in time; the connection is closed.

        Without ``Connection: close`` the server would keep reading the
        body nobody waits for. The text is "not recorded, try again in a few
        minutes" (the one of our own failures): a slow network, as the
        customer sees it, rather than the honeypot's "rejected".
        """
        log.warning("web form post too slow: its body did not come within %ss", self.body_timeout)
        response = self.page(language, request, 408, sub=sub, notice="unavailable")
        response.headers["Connection"] = "close"
        return response

    async def _record(self, language: UiLanguage, request: Request, admitted: Admitted) -> Response:
        """Honeypot, validation, complaint limit, then the capture and the confirmation.

        Only a captured complaint counts against the complaint limit (a repeat
        does not): a customer who makes typos is sent back to the form, not
        locked out.
        """
        sub = admitted.sub
        if sub.honeypot:
            await self._quarantine(admitted, "honeypot", "the hidden field was filled")
            return self.page(language, request, 400, sub=sub, notice="rejected")
        # Attachment checks are charged to the token when the browser did the
        # work (a carrier's shared address): ``by_token`` is only known after
        # them, at the complaint limit. The token allowance bounds how many
        # token budgets one address may open.
        payer = admitted.token_key if admitted.worked else admitted.client
        try:
            checked = await run_in_threadpool(validate, sub, self.limits, payer)
        except InspectionBudgetSpent:
            log.warning("web form attachment-check budget spent for a client")
            return await self._rate_limited(language, request, admitted)
        except InspectionsBusy:
            log.warning("web form attachment checks busy: every slot stayed taken")
            return self.page(language, request, 503, sub=sub, notice="unavailable")
        if checked.errors:
            codes = ", ".join(f"{error.field}:{error.code}" for error in checked.errors)
            await self._quarantine(admitted, "invalid_field", codes)
            return self.page(language, request, 422, sub=sub, errors=checked.errors)
        if not await self._complaint_allowed(admitted):
            log.warning("web form complaint limit reached for a client")
            return await self._rate_limited(language, request, admitted)
        raw = form_input(
            await run_in_threadpool(admitted.body.read_all),
            admitted.content_type,
            admitted.nonce,
            sub,
            received_at=datetime.now(UTC),
            source_ids={"ui_language": language.code, "client": admitted.client[:16]},
        )
        # Durable before the answer: the post, its receipt, its reference. A runner
        # (``staged.normalize_webform_captures``) records the complaint under it.
        captured = await run_in_threadpool(capture_post, self.services, raw, admitted.nonce)
        if captured.created:
            await self._count_complaint(admitted)
        response = HTMLResponse(self.pages.confirmation(language, captured))
        self._cookies(response, admitted.nonce, language)
        return response

    async def _rate_limited(
        self, language: UiLanguage, request: Request, admitted: Admitted
    ) -> Response:
        """The 429 page; it asks for the work only if the post did not do it and it may help."""
        work = not admitted.worked and await self._work_may_help(
            admitted.client, admitted.token_key
        )
        return self.page(language, request, 429, sub=admitted.sub, notice="rate_limited", work=work)

    async def _complaint_allowed(self, admitted: Admitted) -> bool:
        if await run_in_threadpool(self.complaint_limit.within, admitted.complainant):
            return True
        if admitted.worked and await run_in_threadpool(
            self.token_complaints.within, admitted.token_key
        ):
            admitted.by_token = True
            return True
        return False

    async def _count_complaint(self, admitted: Admitted) -> None:
        """Count a captured complaint; a failure here must not hide its reference."""
        try:
            limit = self.token_complaints if admitted.by_token else self.complaint_limit
            key = admitted.token_key if admitted.by_token else admitted.complainant
            await run_in_threadpool(limit.record, key)
        except StoreUnavailable:
            log.warning("web form complaint recorded but not counted against the limit")

    async def _quarantine(self, admitted: Admitted, code: str, reason: str) -> None:
        """Refused input anyone can send: its head, size and sha256 (``INTAKE_QUARANTINE_*``)."""
        body = admitted.body
        refused = RefusedHead(
            head=await run_in_threadpool(body.head, self.head_bytes),
            size=body.size,
            sha256=body.sha256,
        )
        await run_in_threadpool(
            self.services.store.complaints.quarantine,
            channel=Channel.WEBFORM.value,
            data=refused,
            content_type=admitted.content_type,
            reason_code=code,
            reason=reason,
            source_ids={"client": admitted.client[:16]},
        )


def asset(name: str) -> Response:
    """The form's CSS and JS (a fixed list: nothing else under the folder is served)."""
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        return Response(status_code=404)
    response = FileResponse(HERE / "static" / name, media_type=media_type)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def remember_french(_request: Request) -> Response:
    """``/fr/``: the switcher's French link; remember the choice, show ``/``."""
    response = RedirectResponse(DEFAULT.path, status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, DEFAULT.code, max_age=LANGUAGE_COOKIE_AGE, samesite="lax")
    return response


def body_limits(_settings: Settings) -> dict[str, int]:
    """The form's POST paths for the app-wide ``BodySizeLimit``: it enforces its own cap.

    The middleware's answer is the API's JSON 413; the form's own
    (``PostBody``) is the page in the customer's language, with what
    was typed. Exact paths: anything else under ``/fr/`` keeps the
    gateway's limit.
    """
    return {language.action: OWN_LIMIT for language in LANGUAGES}


def build_router(services: Services) -> APIRouter:
    web = WebForm(services)
    router = APIRouter(include_in_schema=False)
    for language in LANGUAGES:
        router.add_api_route(language.path, web.show(language), methods=["GET"])
        router.add_api_route(language.action, web.submit(language), methods=["POST"])
    # The customer's own view of a complaint (``status``): same guard and pages.
    lookup = StatusPages(services, web.guard, web.pages, web.secure_cookies)
    for language in LANGUAGES:
        router.add_api_route(language.status_path, lookup.show(language), methods=["GET"])
        router.add_api_route(language.status_path, lookup.look_up(language), methods=["POST"])
    router.add_api_route("/fr/", remember_french, methods=["GET"])
    router.add_api_route("/assets/webform/{name}", asset, methods=["GET"])
    return router
