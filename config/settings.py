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
    # The broker's own limit (RabbitMQ's max_message_size); larger messages are
    # held in the outbox with an error instead of vanishing.
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
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
    smtp_tls_cert: str = ""
    smtp_tls_key: str = ""

    # -- public URLs --------------------------------------------------------
    # How the outside world reaches this gateway (behind a proxy: the proxy's
    # URL). Twilio signatures and links in messages are computed from it.
    public_base_url: str = "http://127.0.0.1:8080"

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
    # How often the phone worker looks for downloads and ended calls.
    twilio_worker_interval: float = Field(default=1.0, gt=0)

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
    # Staff sessions (mailroom and operator pages); empty: a random secret
    # per start, which logs staff out at each restart.
    session_secret: SecretStr = SecretStr("")
    session_max_age: int = Field(default=8 * 3600, ge=60)
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
    # smtp://user:password@host:port (smtps:// for TLS, ?starttls=true to upgrade);
    # empty: no e-mail acknowledgements.
    smtp_relay_url: SecretStr = SecretStr("")
    ack_from: str = "contact@cashplus.ma"
    ack_max_per_recipient_per_day: int = Field(default=3, ge=1)
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
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'intake.db').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

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
