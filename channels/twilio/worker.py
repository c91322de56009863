"""The phone worker: downloads recordings and photos, and calls missed calls missed.

Runs in ``intake run`` and as its own process (``intake twilio-worker``).
Each pass:

1. claims due downloads (``twilio_media``), fetches each with the account's
   credentials (only ever sent to ``INTAKE_TWILIO_API_BASE_URL``), stores the
   bytes in the blob store with their sha256 and their type sniffed by
   python-magic, and brings the complaint up to date. A failed download is
   retried with exponential backoff; after ``INTAKE_RECORDING_FETCH_ATTEMPTS``
   the complaint goes out without it, its URL in ``evidence.missing_media``.
   Only Twilio's own hosts are fetched from (``allowed``: https on
   api.twilio.com and its media hosts, ``INTAKE_TWILIO_MEDIA_HOSTS``, and
   ``INTAKE_TWILIO_API_BASE_URL``'s own origin); redirects are followed by
   hand, at most ``MAX_REDIRECTS``, each hop checked the same way. A URL
   elsewhere is never requested: the download fails at once, for good
   (``MediaRefused``), and the complaint goes out without it.
2. publishes ``event.call.missed`` for calls that ended during the
   recording and got no recording within ``INTAKE_CALL_END_GRACE``.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import httpx
import magic

from channels.twilio.line import PhoneLine, refresh
from channels.twilio.voice import declare_missed
from config.retry import backoff_delay
from config.settings import Settings
from gateway.lib.logs import complaint_context
from gateway.lib.services import Services
from gateway.store import StoreUnavailable
from gateway.store.media import MediaTask, mark_failed, mark_stored
from normalizer.contract import Attachment
from normalizer.errors import OurFailure

log = logging.getLogger("intake.twilio.worker")

# Recordings are at most a few MB (5 minutes of 8 kHz WAV), MMS photos 5 MB.
MAX_MEDIA_BYTES = 64 * 1024 * 1024
MAX_BACKOFF_SECONDS = 300.0
# A claimed download is someone else's to retry only after this.
CLAIM_LEASE = timedelta(minutes=5)
BATCH = 8
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Where Twilio serves recordings and MMS/WhatsApp media from (over https): its
# API, and the media hosts its API redirects to. Others: INTAKE_TWILIO_MEDIA_HOSTS.
TWILIO_MEDIA_HOSTS = frozenset({"api.twilio.com", "media.twiliocdn.com", "mms.twiliocdn.com"})
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchFailed(OurFailure):
    """The media could not be downloaded this time."""


class MediaRefused(FetchFailed):
    """The URL (or a redirect) leads outside Twilio's hosts: never fetched, never retried."""


def allowed(url: str, settings: Settings) -> bool:
    """Whether ``url`` may be fetched: https on Twilio's media hosts (and the extra ones),
    or the origin of ``INTAKE_TWILIO_API_BASE_URL`` exactly (its scheme, host and port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username or parts.password:
        return False
    base = urlsplit(settings.twilio_api_base_url)
    if (parts.scheme, parts.hostname, port) == (base.scheme, base.hostname, base.port):
        return True
    hosts = TWILIO_MEDIA_HOSTS | {
        host.strip().lower() for host in settings.twilio_media_hosts.split(",") if host.strip()
    }
    return parts.scheme == "https" and port in (None, 443) and parts.hostname in hosts


def download(client: httpx.Client, line: PhoneLine, url: str) -> tuple[bytes, str | None]:
    """The media's bytes and declared type; credentials only for Twilio's own API.

    Each hop (the URL, then each redirect) must be ``allowed`` before it is requested.
    """
    settings = line.settings
    token = settings.twilio_auth_token.get_secret_value()
    api = settings.twilio_api_base_url.rstrip("/") + "/"
    for _hop in range(MAX_REDIRECTS + 1):
        if not allowed(url, settings):
            raise MediaRefused(f"not a Twilio media host: {_origin(url)}")
        auth = (settings.twilio_account_sid, token) if url.startswith(api) and token else None
        with client.stream("GET", url, auth=auth, follow_redirects=False) as response:
            if response.status_code in REDIRECTS and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            return _body(response)
    raise MediaRefused(f"more than {MAX_REDIRECTS} redirects")


def _origin(url: str) -> str:
    """Scheme, host and port of ``url`` for a log or a reason: never its path or query."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "an unreadable URL"


def _body(response: httpx.Response) -> tuple[bytes, str | None]:
    if response.status_code != 200:
        raise FetchFailed(f"HTTP {response.status_code}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_MEDIA_BYTES:
            raise FetchFailed(f"larger than {MAX_MEDIA_BYTES} bytes")
        chunks.append(chunk)
    declared = response.headers.get("content-type")
    return b"".join(chunks), declared.split(";")[0].strip() if declared else None


def retry_delay(settings_backoff: float, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: the backoff, doubling, capped."""
    return backoff_delay(attempt, settings_backoff, MAX_BACKOFF_SECONDS)


def fetch_one(line: PhoneLine, client: httpx.Client, task: MediaTask) -> None:
    try:
        data, declared = download(client, line, task.url)
    except (httpx.HTTPError, FetchFailed) as exc:
        attempt = task.attempts + 1
        # A URL outside Twilio's hosts will not become one: given up at once.
        give_up = isinstance(exc, MediaRefused) or attempt >= line.settings.recording_fetch_attempts
        delay = retry_delay(line.settings.media_fetch_backoff, attempt)
        retry_at = None if give_up else datetime.now(UTC) + timedelta(seconds=delay)
        reason = f"{type(exc).__name__}: {exc}"
        if retry_at is None:
            # Given up: the complaint is complete now (without it) and may go out.
            refresh(line, task.complaint_key, mark_failed(task.id, reason, None))
        else:
            line.media.failed(task.id, reason, retry_at)
        log.warning(
            "download %s failed (attempt %d): %s%s",
            task.media_key,
            attempt,
            reason,
            "; giving up" if give_up else f"; again in {delay:.0f} s",
        )
        return
    stored = line.services.store.blobs.put(data)
    attachment = Attachment(
        name=task.name,
        content_type=magic.from_buffer(data[:65536], mime=True),
        declared_type=declared or task.declared_type,
        size=stored.size,
        sha256=stored.sha256,
        stored_at=stored.location,
    )
    revision = refresh(line, task.complaint_key, mark_stored(task.id, attachment))
    with complaint_context(revision.message.id if revision else "-"):
        log.info("stored %s (%s, %d bytes)", task.media_key, attachment.content_type, stored.size)


def sweep_missed_calls(line: PhoneLine) -> int:
    grace = timedelta(seconds=line.settings.call_end_grace)
    calls = line.calls.ended_without_recording(datetime.now(UTC) - grace)
    return sum(1 for call in calls if declare_missed(line, call))


def work_once(line: PhoneLine, client: httpx.Client) -> int:
    """One pass; returns how many things it did (0: nothing was due)."""
    tasks = line.media.claim_due(BATCH, CLAIM_LEASE)
    for task in tasks:
        fetch_one(line, client, task)
    return len(tasks) + sweep_missed_calls(line)


def run_worker(services: Services, stop: threading.Event) -> None:
    """Passes until ``stop`` is set; idle passes every ``INTAKE_TWILIO_WORKER_INTERVAL``."""
    line = PhoneLine.of(services)
    interval = services.settings.twilio_worker_interval
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        while not stop.is_set():
            try:
                busy = work_once(line, client) > 0
            except StoreUnavailable:
                busy = False  # logged by the store; the next pass tries again
            except Exception:
                log.exception("phone worker pass failed")
                busy = False
            if not busy:
                stop.wait(interval)


def worker_enabled(services: Services) -> bool:
    return bool(services.settings.twilio_auth_token.get_secret_value())
