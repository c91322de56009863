"""A real SpamAssassin ``spamd`` for the triage tests, on a free port of 127.0.0.1.

``running_spamd()`` starts Debian's spamd in the foreground with one child,
no user configuration and no network tests, logging to a file in a temp dir;
``spamd`` (the session fixture) shares one across the tests. The GTUBE
string (``GTUBE``) makes any message spam for SpamAssassin, whatever its
rules' age: the test's known answer. ``scripts/setup`` installs the Debian
packages ``spamassassin`` and ``spamd``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.processes import free_port, wait_until
from tests.peers.services import port_open

SPAMD = shutil.which("spamd") or "/usr/sbin/spamd"
HOST = "127.0.0.1"
# SpamAssassin's Generic Test for Unsolicited Bulk Email.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@dataclass(frozen=True)
class SpamdServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"spamd://{HOST}:{self.port}"

    def log(self) -> str:
        return (self.root / "spamd.log").read_text(errors="replace")


@contextmanager
def running_spamd() -> Iterator[SpamdServer]:
    """spamd for the duration of the block; stopped and its files removed after."""
    if not Path(SPAMD).exists():
        pytest.fail(f"spamd is not installed ({SPAMD}): scripts/setup installs spamassassin, spamd")
    root = Path(tempfile.mkdtemp(prefix="spamd-"))
    port = free_port()
    command = [
        SPAMD,
        f"--listen={HOST}:{port}",
        "--allowed-ips=127.0.0.1",
        f"--pidfile={root / 'spamd.pid'}",
        "--max-children=2",
        "--min-children=1",
        "--nouser-config",
        "--local",  # no network tests (DNS blocklists, Razor): none reachable here
        f"--syslog={root / 'spamd.log'}",
    ]
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        server = SpamdServer(root, port, process)
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError("spamd exited at start-up:\n" + server.log()[-3000:])
                return port_open(HOST, port, 0.2)

            wait_until(ready, f"spamd listening on {HOST}:{port}", timeout=60)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def spamd() -> Iterator[SpamdServer]:
    """One spamd for the test session."""
    with running_spamd() as server:
        yield server
