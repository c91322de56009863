"""Opening an IMAP session: TCP with timeouts, the TLS mode, the login.

IMAP inbox -> **channels.email.imap.connection** -> poller / backfill. Everything
here is about reaching the mailbox; what to do with its messages is in
``mailbox.py`` and ``poller.py``.

- ``INTAKE_IMAP_TLS``: ``on`` (implicit TLS, port 993), ``starttls`` (refuses
  to go on in clear text if the server does not offer it) or ``off`` (tests,
  a local relay).
- ``INTAKE_IMAP_AUTH``: ``password``, or ``xoauth2`` for Microsoft 365 and
  Gmail, with an access token from a ``TokenProvider``. The default provider
  runs ``INTAKE_IMAP_OAUTH_TOKEN_COMMAND`` and reads the token from its
  stdout, so any OAuth client (a refresh-token script, ``az account
  get-access-token``, ``oama``) can supply it; a token is fetched for every
  connection, so short-lived tokens are never reused after they expire.
- Socket timeouts apply to the connection and to every read, so a silent
  network never hangs the poller (IDLE waits use their own short polls).

Passwords and tokens are never logged and never put into exception texts.
"""

from __future__ import annotations

import imaplib
import logging
import shlex
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import LoginError

from config.settings import ConfigError, Settings

log = logging.getLogger("intake.imap")
# imapclient logs every command and response at DEBUG: customers' mail and
# addresses. Our own logs say what happened by UID instead.
logging.getLogger("imapclient").setLevel(logging.INFO)

TokenProvider = Callable[[Settings], str]

# Everything that means "the server or the network let us down": retry later.
# imaplib.IMAP4.error covers imapclient's errors (NO/BAD answers, aborts).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, imaplib.IMAP4.error, EOFError)


class ImapConfigError(ConfigError):
    """Settings that cannot work (login refused, no token, no STARTTLS, clashing folders).

    The operator's to fix; the poller keeps retrying with backoff meanwhile,
    ``intake imap poll --once`` exits with 78.
    """


@dataclass(frozen=True)
class MailboxName:
    """A mailbox as the checkpoint table keys it: host, user and folder (not the port,
    so moving from 993 to STARTTLS on 143 keeps the checkpoint)."""

    host: str
    user: str
    folder: str

    @property
    def key(self) -> str:
        return f"imap://{self.user}@{self.host}/{self.folder}"


def mailbox_name(settings: Settings, folder: str | None = None) -> MailboxName:
    return MailboxName(settings.imap_host, settings.imap_user, folder or settings.imap_folder)


def command_token(settings: Settings) -> str:
    """The access token printed by ``INTAKE_IMAP_OAUTH_TOKEN_COMMAND`` (first line of stdout)."""
    command = settings.imap_oauth_token_command
    if not command.strip():
        raise ImapConfigError("INTAKE_IMAP_AUTH=xoauth2 needs INTAKE_IMAP_OAUTH_TOKEN_COMMAND")
    try:
        done = subprocess.run(  # noqa: S603 (the operator's own command, no shell)
            shlex.split(command),
            capture_output=True,
            text=True,
            timeout=settings.imap_timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImapConfigError(f"token command could not run: {type(exc).__name__}") from None
    token = done.stdout.strip().splitlines()[0].strip() if done.stdout.strip() else ""
    if done.returncode != 0 or not token:
        # stdout may hold a token or part of one: never quoted.
        raise ImapConfigError(
            f"token command exited with {done.returncode} and "
            f"{'a token' if token else 'no token'} on stdout"
        )
    return token


def _tls_context() -> ssl.SSLContext:
    # The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR apply), hostname checked.
    return ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)


def connect(settings: Settings) -> IMAPClient:
    """TCP (and TLS) to the server, not logged in yet."""
    implicit_tls = settings.imap_tls == "on"
    client = IMAPClient(
        settings.imap_host,
        settings.imap_port,
        ssl=implicit_tls,
        ssl_context=_tls_context() if implicit_tls else None,
        timeout=SocketTimeout(connect=settings.imap_timeout, read=settings.imap_timeout),
    )
    # INTERNALDATE with its zone, not converted to naive local time.
    client.normalise_times = False
    return client


def login(client: IMAPClient, settings: Settings, token_provider: TokenProvider) -> None:
    try:
        if settings.imap_auth == "xoauth2":
            client.oauth2_login(settings.imap_user, token_provider(settings))
        else:
            client.login(settings.imap_user, settings.imap_password.get_secret_value())
    except LoginError:
        raise ImapConfigError(
            f"the IMAP server refused the {settings.imap_auth} login of the configured user"
        ) from None


def open_session(settings: Settings, token_provider: TokenProvider = command_token) -> IMAPClient:
    """A logged-in client; raises ``ImapConfigError`` or one of ``NETWORK_ERRORS``."""
    client = connect(settings)
    try:
        if settings.imap_tls == "starttls":
            if not client.has_capability("STARTTLS"):
                raise ImapConfigError("INTAKE_IMAP_TLS=starttls but the server does not offer it")
            client.starttls(_tls_context())
        login(client, settings, token_provider)
    except BaseException:
        close_quietly(client)
        raise
    log.debug("logged in to %s:%s", settings.imap_host, settings.imap_port)
    return client


def close_quietly(client: IMAPClient) -> None:
    """Log out if the connection still works, else just drop it."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception as exc:
            log.debug("connection already gone: %s", type(exc).__name__)
