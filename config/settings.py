"""Typed settings, read once from ``INTAKE_*`` environment variables.

Every process of the gateway (web, relay, and the channel workers that later
issues add) reads the same settings object. A missing or malformed value
fails at start-up naming the variable, never later in a request.
``config/example.env`` documents every key with its default; a test keeps the
two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.hours import CallCentre, parse_dial, parse_holidays, parse_hours
from config.templates import parse_content_sids

ENV_PREFIX = "INTAKE_"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


class Settings(BaseSettings):
    """All configuration of the gateway. Field ``x`` is read from ``INTAKE_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    # Where the embedded defaults keep their files: the SQLite database, the
    # evidence blobs and the local-disk broker.
    data_dir: Path = Path("var")
    # Empty means SQLite in data_dir (WAL, synchronous=FULL).
    database_url: str = ""
    # Secret of the pseudonymous customer keys (an HMAC of each phone and e-mail);
    # empty: one made once in data_dir (``gateway.store.customers.resolve_secret``).
    customer_key_secret: SecretStr = SecretStr("")
    # Empty means kombu's filesystem transport under data_dir.
    broker_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    # Prefix for every exchange and queue name, so several deployments (or
    # test runs) can share one broker without seeing each other.
    topology_prefix: str = ""
    # Quorum queues on RabbitMQ (replicated, durable); off for brokers that lack them.
    quorum_queues: bool = True
    confirm_timeout: float = Field(default=10.0, gt=0)
    relay_batch_size: int = Field(default=200, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=0.5, gt=0)
    relay_max_backoff: float = Field(default=30.0, gt=0)
    # Normalizer runners (``intake normalize-worker``, a thread of ``intake run``):
    # captured inputs claimed per batch, how long a claim holds, the idle poll.
    normalize_batch_size: int = Field(default=100, ge=1, le=1000)
    normalize_lease_seconds: float = Field(default=60.0, gt=0)
    normalize_poll_interval: float = Field(default=0.5, gt=0)
    # Niceness ``intake normalize-worker`` takes (os.nice): on a host it shares
    # with an edge, the edge's answers get the cores first and the runner uses
    # what is left (it catches up within seconds). 0: the same priority.
    normalize_nice: int = Field(default=10, ge=0, le=19)
    # The broker's own limit (RabbitMQ's max_message_size); larger messages are
    # held in the outbox with an error instead of vanishing.
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # HTTP server bounds (S18): connections plus requests in progress beyond which
    # uvicorn answers 503 at once; seconds an idle keep-alive connection is kept;
    # seconds a client has to send a request's headers (from connect, or from the
    # previous answer) before the connection is closed (slowloris); largest request
    # head h11 buffers (bytes).
    http_limit_concurrency: int = Field(default=500, ge=1)
    http_timeout_keep_alive: int = Field(default=5, ge=1)
    http_header_timeout: float = Field(default=10.0, gt=0)
    http_max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    # Refused input (a form post with a bad field, a honeypot hit) is quarantined as
    # its first bytes only, with the whole input's size and sha256 (S2); when the
    # heads kept add up to the quota, only the metadata is kept.
    quarantine_head_bytes: int = Field(default=256 * 1024, ge=1024)
    quarantine_refused_quota_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    # Retention (law 09-08; docs/privacy.md), in days, each from its own clock:
    # "answer" is the answer reported by case handling (answered or closed), else
    # the legal answer deadline; a complaint reported open is never purged.
    # ``intake retention purge`` removes the content and keeps the regulatory record.
    retention_raw_days: int = Field(default=1826, ge=1)  # e-mail, SMS, form, API: after answer
    retention_recording_days: int = Field(default=730, ge=1)  # calls: after receipt
    retention_letter_days: int = Field(default=1826, ge=1)  # letter scans: after answer
    retention_attachment_days: int = Field(default=1826, ge=1)  # other attachments: after answer
    retention_refused_days: int = Field(default=90, ge=1)  # refused inputs: after refusal
    auto_migrate: bool = True
    # Seconds a write waits for SQLite's write lock (another process holding it)
    # before the input is refused as our failure: HTTP 503, SMTP 451, IMAP mail left.
    store_lock_timeout: float = Field(default=5.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = "Africa/Casablanca"
    ack_days: int = Field(default=10, ge=1)
    answer_days: int = Field(default=40, ge=1)
    # Source of the CloudEvents envelope: which gateway produced the event.
    event_source: str = "urn:cashplus:complaints-intake"

    # -- e-mail (issue: e-mail channel) ------------------------------------
    # Senders whose mail is a complaint forwarded by the regulator or the
    # mediator: comma-separated domains, or exact addresses.
    origin_bank_al_maghrib: str = "bkam.ma"
    origin_cmmb: str = "cmmb.ma"
    email_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    email_max_parts: int = Field(default=200, ge=1)
    email_max_depth: int = Field(default=20, ge=1)
    email_max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    # Mail authentication (S12): an origin other than customer needs authenticated
    # mail. authserv-ids (RFC 8601) of our own MX or mailbox provider whose topmost
    # Authentication-Results headers are believed, comma-separated; empty: none.
    # On SMTP, only from a peer within smtp_allowed_networks (our MX relaying):
    # a public receiver (no allowed networks) ignores those headers.
    trusted_authserv_ids: str = ""
    # Verify DKIM signatures ourselves (DNS lookup of the key, bounded by the timeout
    # in seconds; a DNS failure leaves the mail unauthenticated, never refused).
    email_dkim_verify: bool = True
    email_dkim_dns_timeout: float = Field(default=5.0, gt=0, le=60)
    # Triage: SpamAssassin's spamd (spamd://host:port) gives e-mail its spam and
    # phishing verdicts; empty: no filter (the other triage rules still run).
    spam_filter_url: str = ""
    spam_filter_timeout: float = Field(default=10.0, gt=0, le=120)

    # IMAP poller: runs when imap_host is set.
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_user: str = ""
    imap_password: SecretStr = SecretStr("")
    imap_tls: Literal["on", "off", "starttls"] = "on"
    # password, or xoauth2 with a token printed by imap_oauth_token_command.
    imap_auth: Literal["password", "xoauth2"] = "password"
    imap_oauth_token_command: str = ""
    imap_folder: str = "INBOX"
    imap_processed_folder: str = "Processed"
    imap_quarantine_folder: str = "Quarantine"
    imap_batch_size: int = Field(default=50, ge=1, le=1000)
    imap_timeout: float = Field(default=30.0, gt=0)
    # IDLE is renewed before servers drop it (RFC 2177: at most 29 minutes).
    imap_idle_seconds: float = Field(default=600.0, gt=0, le=29 * 60)
    imap_poll_interval: float = Field(default=30.0, gt=0)

    # SMTP receiver: runs when smtp_port is set.
    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_hostname: str = "intake.cashplus.ma"
    # Accepted recipients: comma-separated addresses, or domains (all addresses).
    smtp_recipients: str = "contact@cashplus.ma"
    # Networks allowed to deliver (comma-separated CIDR); empty: anyone (a public MX).
    smtp_allowed_networks: str = ""
    smtp_max_connections: int = Field(default=50, ge=1)
    # Sessions one client address may hold at once (S9); beyond it: 421.
    smtp_max_connections_per_address: int = Field(default=5, ge=1)
    # Seconds a session may stay silent (DATA included: no bytes for that long).
    smtp_idle_timeout: float = Field(default=60.0, gt=0)
    # Commands one session may send, and how many of them may be NOOP, HELP, VRFY
    # or EXPN (they only keep a session open); beyond: 421 and the session closes.
    smtp_max_commands: int = Field(default=100, ge=10)
    smtp_max_noops: int = Field(default=10, ge=1)
    # DATA beyond this many bytes goes to a spool file under data_dir (S10), not memory.
    smtp_spool_threshold_bytes: int = Field(default=256 * 1024, ge=0)
    # Messages per hour (S2) from one MAIL FROM address and from one client address;
    # beyond: 450 4.7.1 (the sender retries later), the head kept in quarantine.
    # 0: no limit (a relay that is the only client: set the client limit to 0).
    smtp_max_messages_per_sender_per_hour: int = Field(default=20, ge=0)
    smtp_max_messages_per_client_per_hour: int = Field(default=200, ge=0)
    smtp_tls_cert: str = ""
    smtp_tls_key: str = ""

    # -- public URLs --------------------------------------------------------
    # How the outside world reaches this gateway (behind a proxy: the proxy's
    # URL). Twilio signatures, links in messages and the API's status_url /
    # Location are computed from it, never from the request's Host; empty: the
    # API answers relative links (the path only).
    public_base_url: str = "http://127.0.0.1:8080"

    # -- partner API -------------------------------------------------------
    # How many days in the past a complaint may be dated: a partner's
    # received_at (keys with the received-at:backdate scope; others not at
    # all) and a letter's received_on (API and the mailroom's upload page).
    max_backdate_days: int = Field(default=30, ge=0)
    # Serve the API documentation (/docs, Swagger UI from the installed
    # swagger-ui-bundle package, under the pages' strict policy); off: 404.
    api_docs: bool = True

    # -- phone line (issue: phone channel) ----------------------------------
    twilio_account_sid: str = Field(
        default="", validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "INTAKE_TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "INTAKE_TWILIO_AUTH_TOKEN"),
    )
    # Twilio's REST API; tests point it at a local stand-in.
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_phone_number: str = "+212520020915"
    twilio_whatsapp_number: str = ""
    # Seconds a voice complaint waits for its transcript before it is published without.
    call_transcript_wait: float = Field(default=600.0, ge=0)
    # Downloads of a recording or an MMS/WhatsApp photo, the first retry after
    # media_fetch_backoff seconds, doubling (at most 5 minutes apart).
    recording_fetch_attempts: int = Field(default=8, ge=1)
    media_fetch_backoff: float = Field(default=2.0, gt=0)
    # Seconds an SMS/WhatsApp complaint with photos waits for them before it is published without.
    message_media_wait: float = Field(default=300.0, ge=0)
    # A call that ended while recording is a missed call if no recording shows up by then.
    call_end_grace: float = Field(default=60.0, ge=0)
    # A recording shorter than this (seconds) is an empty message: the caller is to be
    # called back (listed on /ops/callbacks/), the complaint is kept all the same. 0: none.
    call_short_message: float = Field(default=2.0, ge=0)
    # How often the phone worker looks for downloads and ended calls.
    twilio_worker_interval: float = Field(default=1.0, gt=0)
    # Hosts media and recordings are downloaded from besides Twilio's own
    # (api.twilio.com and its media hosts) and INTAKE_TWILIO_API_BASE_URL's;
    # comma-separated. Only https, and each redirect is checked against the same list.
    twilio_media_hosts: str = ""
    # The call centre (issue 18): opening hours in INTAKE_TIMEZONE, e.g.
    # "Mon-Fri 09:00-18:00; Sat 09:00-13:00" (empty: never open, every caller leaves
    # a message); closed dates (YYYY-MM-DD, comma-separated); where a caller is put
    # through in hours (+212... number, sip:user@host URI, or queue:NAME for Twilio's
    # <Enqueue>, "{language}" in NAME for one queue per language; empty: nobody);
    # seconds the caller waits for an agent before leaving a message instead.
    call_centre_hours: str = ""
    call_centre_holidays: str = ""
    call_centre_dial: str = ""
    call_centre_wait: int = Field(default=30, ge=5, le=600)
    # WhatsApp acknowledgements with Twilio's Content API: an approved template's
    # ContentSid per language, "fr=HX...,ar=HX..." (variables 1 = reference, 2 = the
    # acknowledgement due date, 3 = the answer due date); a language without one,
    # or a template Twilio refuses, goes by SMS, then e-mail, then the staff list.
    twilio_whatsapp_ack_templates: str = ""

    # -- postal letters (issue: letters and OCR) ----------------------------
    ocr_workers: int = Field(default=2, ge=1)
    # Seconds one page's OCR may take (rendering, orientation, recognition); a letter's
    # job gets this once per page, plus once. A dense page takes 5-15 s on one core.
    ocr_timeout: float = Field(default=60.0, gt=0)
    ocr_memory_mb: int = Field(default=1024, ge=128)
    letter_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    letter_max_pages: int = Field(default=50, ge=1)
    letter_max_pixels: int = Field(default=40_000_000, ge=1_000_000)
    # Pages whose mean word confidence is under this are flagged for review.
    ocr_review_confidence: float = Field(default=60.0, ge=0, le=100)
    # How the programs that decode untrusted files (poppler, qpdf, tesseract, Pillow)
    # are confined: "auto" runs them under bubblewrap (no network, no service
    # files, nobody's uid) when it works here, else under rlimits only with a warning
    # at start; "bwrap" refuses to start without it; "none" uses rlimits only.
    sandbox: Literal["auto", "bwrap", "none"] = "auto"
    # Staff sessions (mailroom and operator pages); empty: a random secret
    # per start, which logs staff out at each restart.
    session_secret: SecretStr = SecretStr("")
    session_max_age: int = Field(default=8 * 3600, ge=60)
    # Seconds without a request after which a staff session ends (besides its max age).
    staff_idle_timeout: int = Field(default=30 * 60, ge=60)
    # Staff login throttling (review S6): failed logins allowed per account name and
    # per client address before a back-off; the first back-off in seconds (doubled
    # at each further failure) and the longest lock. A browser that logged in as
    # the user before is not held by the account's lock (a lock cannot keep them out).
    staff_login_free_attempts: int = Field(default=5, ge=1)
    staff_login_address_free_attempts: int = Field(default=20, ge=1)
    staff_login_backoff_seconds: float = Field(default=2.0, gt=0)
    staff_login_lockout_seconds: float = Field(default=900.0, gt=0)
    # /metrics (review S17): seconds its figures (and /readyz's, 5 at most) are
    # cached; a bearer token it requires (empty: none); networks it answers
    # (CIDR, comma-separated; empty: any).
    metrics_cache_seconds: float = Field(default=15.0, ge=0)
    metrics_token: SecretStr = SecretStr("")
    metrics_allowed_networks: str = ""
    # Scanner hot folder watched by ``intake run`` (``intake letters watch DIR`` otherwise);
    # empty: none.
    letter_hot_folder: str = ""

    # -- web form and acknowledgements (issue: customer-facing) -------------
    # Complaints accepted per client address per hour; refused posts do not count.
    webform_max_per_hour: int = Field(default=10, ge=1)
    # Every post with a valid form token, whatever its outcome: a flood guard.
    webform_max_posts_per_hour: int = Field(default=60, ge=1)
    # Largest attachment of the web form (at most five); letters' type and page checks apply.
    webform_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Form posts handled at once by one process; more get a 503 page with Retry-After
    # before their body is read (S1).
    webform_max_concurrent_posts: int = Field(default=4, ge=1)
    # Seconds a form post has to send the head of its body (its fields), then to send
    # each further chunk; past either, a 408 page and the connection is closed.
    webform_body_timeout: float = Field(default=30.0, gt=0)
    # Past the per-address limits (a carrier NAT shared by many customers), a post
    # whose browser solved a proof of work for its form token counts against that
    # token's own budget instead (S20): posts and complaints per token per hour, and
    # the work asked (leading zero bits of sha256; 0: no way past the address limits).
    webform_max_posts_per_token: int = Field(default=20, ge=1)
    webform_max_per_token: int = Field(default=3, ge=1)
    webform_pow_bits: int = Field(default=16, ge=0, le=24)
    # Token budgets one client address may open per hour: a post with a valid proof of
    # work on a token not seen in the last hour uses one; beyond, the plain 429 (S20).
    webform_max_tokens_per_address: int = Field(default=5, ge=1)
    # Attachment checks of the form (each file's structure read in the sandbox):
    # how many run at once in this process, and how long a post waits for a free
    # one before it is answered 503 with Retry-After.
    webform_inspection_workers: int = Field(default=2, ge=1)
    webform_inspection_wait: float = Field(default=10.0, ge=0)
    # Seconds of attachment checks one client address may spend per hour (per
    # process); beyond it the form answers 429.
    webform_inspection_seconds_per_hour: float = Field(default=120.0, gt=0)
    # smtp://user:password@host:port (smtps:// for TLS, ?starttls=true to upgrade);
    # empty: no e-mail acknowledgements.
    smtp_relay_url: SecretStr = SecretStr("")
    ack_from: str = "contact@cashplus.ma"
    # Return path of e-mail acknowledgements ("bounces@intake.cashplus.ma"): each goes
    # out from bounces+<acknowledgement id>@... (VERP) so its bounce names it; the SMTP
    # receiver accepts those addresses. Empty: INTAKE_ACK_FROM (bounces are then
    # recognized by the acknowledgement's Message-ID alone).
    ack_bounce_address: str = ""
    ack_max_per_recipient_per_day: int = Field(default=3, ge=1)
    # Countries (ISO 3166 codes, comma-separated) whose numbers may get an SMS or
    # WhatsApp acknowledgement; others are passed over (SMS pumping, review S4).
    ack_sms_countries: str = "MA"
    # SMS + WhatsApp acknowledgements per local day, all workers together; past it,
    # the rest wait for the next day (an ERROR is logged once that day).
    ack_sms_max_per_day: int = Field(default=500, ge=0)
    # E-mail acknowledgements per local day, all workers together (review S5).
    ack_email_max_per_day: int = Field(default=2000, ge=0)
    # Failed attempts (ours, not the recipient's) in a row before a complaint leaves the
    # queue; it is then tried again every few minutes, then hourly, until its
    # acknowledgement deadline, and only then recorded as failed.
    ack_max_attempts: int = Field(default=5, ge=1)

    # -- operations (issue: several instances, operators) -------------------
    # text: readable lines (development); json: one JSON object per line.
    log_format: Literal["text", "json"] = "text"
    # Seconds a leader lease (the one active IMAP poller of a mailbox) lasts
    # unrenewed: a standby takes over about this long after the holder died.
    leader_lease_seconds: float = Field(default=10.0, ge=1)
    # Seconds a relay keeps a claimed outbox batch (at least 2 x confirm_timeout).
    relay_lease_seconds: float = Field(default=60.0, ge=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("call_centre_hours")
    @classmethod
    def _valid_hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("call_centre_holidays")
    @classmethod
    def _valid_holidays(cls, value: str) -> str:
        parse_holidays(value)
        return value

    @field_validator("call_centre_dial")
    @classmethod
    def _valid_dial(cls, value: str) -> str:
        parse_dial(value)
        return value

    @field_validator("twilio_whatsapp_ack_templates")
    @classmethod
    def _valid_templates(cls, value: str) -> str:
        parse_content_sids(value)
        return value

    @field_validator("ack_bounce_address")
    @classmethod
    def _bounce_address(cls, value: str) -> str:
        value = value.strip()
        local, at, domain = value.rpartition("@")
        if value and (not at or not local or not domain or "+" in local):
            raise ValueError(f"{value!r}: expected an address such as bounces@example.org")
        return value

    @field_validator("spam_filter_url")
    @classmethod
    def _spamd_url(cls, value: str) -> str:
        if value:
            parse_spamd_url(value)
        return value

    @field_validator("broker_url")
    @classmethod
    def _loadable_url(cls, value: str) -> str:
        """A URL kombu can open (empty: the embedded default, nothing to check).

        The database URL is the store's to check (``gateway.store.checked_settings``),
        when a process is about to open it.
        """
        if value:
            check_broker_url(value)
        return value

    # -- derived values ---------------------------------------------------
    @property
    def spam_filter(self) -> tuple[str, int] | None:
        """spamd's host and port, None when no filter is configured."""
        return parse_spamd_url(self.spam_filter_url) if self.spam_filter_url else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'intake.db').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def call_centre(self) -> CallCentre:
        """Opening hours, destination and wait of the call centre, parsed (checked at load)."""
        return CallCentre(
            hours=parse_hours(self.call_centre_hours, self.call_centre_holidays),
            dial=parse_dial(self.call_centre_dial),
            wait=self.call_centre_wait,
            zone=self.timezone,
        )

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def origin_rules(self) -> dict[str, list[str]]:
        """Sender domains/addresses per origin, for e-mail origin classification."""
        return {
            "bank_al_maghrib": _split(self.origin_bank_al_maghrib),
            "cmmb": _split(self.origin_cmmb),
        }

    @property
    def uses_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem:")


def _split(value: str) -> list[str]:
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def parse_spamd_url(url: str) -> tuple[str, int]:
    """``spamd://host:port`` (port 783 when left out) -> (host, port)."""
    scheme, found, rest = url.partition("://")
    if not found or scheme != "spamd":
        raise ValueError("not a spamd URL (spamd://host:port)")
    host, _colon, port = rest.rstrip("/").rpartition(":") if ":" in rest else (rest, "", "783")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("not a spamd URL (spamd://host:port)")
    return host, int(port)


# Messages about URLs name their scheme, never the URL: it may hold a password.
def check_broker_url(url: str) -> None:
    """Refuse a broker URL kombu has no transport for, at start-up.

    Left to kombu, it fails only when the relay first connects, and reads as
    a broker outage. Building the transport imports its client library but
    connects to nothing.
    """
    from kombu import Connection

    scheme, found, _rest = url.partition("://")
    if not found:
        raise ValueError("not a broker URL (transport://user:password@host:port/vhost)")
    name = scheme.split("+", 1)[0]
    try:
        Connection(url).transport  # noqa: B018 (resolves and loads the transport)
    except KeyError as exc:
        hint = str(exc.args[0]).partition("Did you mean ")[2].rstrip("?")
        raise ValueError(
            f"unknown transport {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
        ) from None
    except ValueError:
        raise ValueError(f"unknown transport {name!r}") from None
    except Exception as exc:
        raise ValueError(f"transport {name!r} cannot be loaded: {type(exc).__name__}") from None


def load_settings(**overrides: object) -> Settings:
    """Read the environment into ``Settings``; raise ``ConfigError`` naming the bad key."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"])
            key = name if name.isupper() else ENV_PREFIX + name.upper()
            problems.append(f"{key}: {_message(error)}")
        raise ConfigError("; ".join(problems)) from None


def _message(error: Any) -> str:
    """Pydantic's message, without the "Value error, " it puts before our validators' own."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return str(error["msg"])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
