"""A real Dovecot IMAP server for the IMAP channel's tests and benchmark.

``running_dovecot()`` starts Dovecot in the foreground (``dovecot -F``) with
its own configuration in a temp dir, on free ports of 127.0.0.1:

- plain IMAP with STARTTLS offered (``port``) and implicit TLS (``tls_port``),
  with a self-signed certificate made by ``openssl`` (``ca_file`` trusts it);
- passwords from a ``passwd-file`` (``{PLAIN}``), mailboxes in Maildir owned
  by the system user ``vmail`` (created with ``useradd -r`` when missing);
- XOAUTH2 checked by Dovecot's ``oauth2`` passdb against a small local HTTP
  introspection endpoint (``issue_token`` registers a token), standing in for
  Microsoft's or Google's identity provider, which cannot be reached here.

It needs root (Dovecot drops to ``vmail`` and ``dovecot``), as on the
project's machines; ``.ci/run`` installs ``dovecot-imapd``.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from imapclient import IMAPClient

from tests.peers.processes import free_port, wait_until
from tests.peers.services import port_open

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
MAIL_USER = "vmail"
HOST = "127.0.0.1"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
# Process titles show each session's state (IDLE), which tests wait for.
verbose_proctitle = yes
listen = {host}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
last_valid_uid = 0
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
# A refused login in a test must not cost two seconds.
auth_failure_delay = 0
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
passdb {{
  driver = passwd-file
  # One file per user: Dovecot re-reads a changed file at most once a second.
  args = scheme=PLAIN username_format=%u {root}/users/%u
  mechanisms = plain login
}}
passdb {{
  driver = oauth2
  args = {root}/oauth2.conf.ext
  mechanisms = xoauth2
}}
userdb {{
  driver = static
  # allow_all_users: doveadm looks users up without a passdb (those are per mechanism).
  args = uid={uid} gid={gid} home={root}/mail/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""

_OAUTH2 = """\
introspection_mode = post
introspection_url = http://{host}:{port}/introspect
username_attribute = username
active_attribute = active
active_value = true
"""


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str


class _TokenIssuer(ThreadingHTTPServer):
    """The introspection endpoint Dovecot asks whether a bearer token is valid."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), _IntrospectionHandler)
        self.tokens: dict[str, str] = {}


class _IntrospectionHandler(BaseHTTPRequestHandler):
    server: _TokenIssuer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        user = self.server.tokens.get((form.get("token") or [""])[0])
        body = json.dumps({"active": "true", "username": user} if user else {"active": "false"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class DovecotServer:
    root: Path
    port: int
    tls_port: int
    process: subprocess.Popen[bytes]
    issuer: _TokenIssuer

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "cert.pem"

    def add_user(self, name: str | None = None, *, capability: str = "") -> ImapAccount:
        """A new mailbox user with a random password.

        ``capability`` replaces what Dovecot advertises to this user after
        login (one word: passwd-file splits extra fields at spaces), e.g.
        ``IMAP4rev1`` for a server without IDLE, MOVE and UIDPLUS.
        """
        user = name or f"u{secrets.token_hex(4)}@intake.test"
        password = secrets.token_urlsafe(12)
        extra = f"userdb_imap_capability={capability}" if capability else ""
        (self.root / "users" / user).write_text(f"{user}:{{PLAIN}}{password}::::::{extra}\n")
        return ImapAccount(HOST, self.port, user, password)

    def issue_token(self, user: str) -> str:
        """An OAuth2 access token the identity provider vouches for."""
        token = secrets.token_urlsafe(24)
        self.issuer.tokens[token] = user
        return token

    def client(self, account: ImapAccount) -> IMAPClient:
        """A logged-in plain-text client, for tests to set a mailbox up and look at it."""
        client = IMAPClient(account.host, account.port, ssl=False, timeout=10)
        client.login(account.user, account.password)
        return client

    def append(
        self, account: ImapAccount, raw: bytes, when: datetime | None = None, folder: str = "INBOX"
    ) -> None:
        """Deliver ``raw`` as the server would, with ``when`` as its INTERNALDATE."""
        with self.client(account) as client:
            client.append(folder, raw, msg_time=when)

    def count(self, account: ImapAccount, folder: str) -> int:
        """Messages in ``folder`` (0 when it does not exist)."""
        with self.client(account) as client:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])

    def uidvalidity(self, account: ImapAccount, folder: str = "INBOX") -> int:
        with self.client(account) as client:
            return int(client.select_folder(folder, readonly=True)[b"UIDVALIDITY"])

    def renumber(self, account: ImapAccount, folder: str = "INBOX") -> int:
        """Give ``folder`` a new UIDVALIDITY, as a restore or a migration does; returns it."""
        new = self.uidvalidity(account, folder) + 7
        self.doveadm("mailbox", "update", "-u", account.user, "--uid-validity", str(new), folder)
        return new

    def idle_sessions(self, user: str) -> int:
        """IMAP sessions of ``user`` in IDLE right now (from Dovecot's process titles)."""
        wanted = f"dovecot/imap [{user} ".encode()
        count = 0
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                title = cmdline.read_bytes()
            except OSError:
                continue
            count += title.startswith(wanted) and b" IDLE]" in title
        return count

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            [DOVEADM, "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"doveadm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def kick(self, user: str) -> None:
        """Disconnect every IMAP session of ``user``, as an admin or a crash would."""
        self.doveadm("kick", user)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def require_dovecot() -> None:
    if not (Path(DOVECOT).exists() and Path(DOVEADM).exists()):
        pytest.fail(
            f"Dovecot is not installed ({DOVECOT}): `apt-get install dovecot-imapd` "
            "(scripts/setup --dev does it)"
        )
    if os.geteuid() != 0:
        pytest.fail("the Dovecot test server needs root (it switches to the vmail user)")


def _mail_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", MAIL_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(MAIL_USER)


def _make_certificate(folder: Path) -> None:
    folder.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", f"subjectAltName=DNS:localhost,IP:{HOST}",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _write_config(root: Path, port: int, tls_port: int, issuer_port: int) -> None:
    account = _mail_user()
    for name in ("run", "state"):
        (root / name).mkdir()
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, account.pw_uid, account.pw_gid)
    (root / "users").mkdir()
    (root / "oauth2.conf.ext").write_text(_OAUTH2.format(host=HOST, port=issuer_port))
    _make_certificate(root / "tls")
    (root / "dovecot.conf").write_text(
        _CONFIG.format(
            root=root,
            host=HOST,
            uid=account.pw_uid,
            gid=account.pw_gid,
            port=port,
            tls_port=tls_port,
        ),
        encoding="utf-8",
    )


@contextmanager
def running_dovecot() -> Iterator[DovecotServer]:
    """Start Dovecot for the duration of the block; stop it and remove its files after."""
    require_dovecot()
    # Short (unix socket paths are limited to ~108 bytes) and traversable by
    # the dovecot and vmail users: mkdtemp makes it 0700.
    root = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
    root.chmod(0o755)
    issuer = _TokenIssuer()
    threading.Thread(target=issuer.serve_forever, name="oauth2-issuer", daemon=True).start()
    port, tls_port = free_port(), free_port()
    try:
        _write_config(root, port, tls_port, issuer.server_address[1])
        with (root / "master.err").open("wb") as errors:
            process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        server = DovecotServer(root, port, tls_port, process, issuer)
        try:
            _wait_listening(server)
            yield server
        finally:
            _stop(process)
    finally:
        issuer.shutdown()
        issuer.server_close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the test session; each test makes its own user (``add_user``)."""
    with running_dovecot() as server:
        yield server


def _wait_listening(server: DovecotServer) -> None:
    def ready() -> bool:
        if server.process.poll() is not None:
            raise AssertionError(
                "Dovecot exited at start-up:\n"
                + (server.root / "master.err").read_text(errors="replace")
                + server.log()[-3000:]
            )
        return port_open(HOST, server.port, 0.2) and port_open(HOST, server.tls_port, 0.2)

    wait_until(ready, f"Dovecot listening on {HOST}:{server.port}", timeout=30)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
