"""The sandbox of the programs that decode hostile files (real bubblewrap).

A child started as the OCR job and the upload checks start theirs (with
``Confine``) sees no secret of the service: not its environment, not a file
of the data folder, no network; it runs as nobody with ``no_new_privs``,
and sees the one input file it was given. ``INTAKE_SANDBOX=bwrap`` refuses
to start where bubblewrap does not work; ``auto`` warns and goes on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import ConfigError, Settings
from gateway.lib.services import build_services, configure_sandbox
from normalizer.ocr import ScanLimits, inspect_scan, run_ocr, sandbox
from normalizer.ocr.job import ScanFile
from normalizer.ocr.sandbox import Confine, Limits, run_limited
from tests.peers import scans

SECRET = "session-secret-that-no-child-may-see"
# What the child tries, each answered in one JSON object on stdout.
PROBE = """
import json, os, socket, sys
found = {"uid": os.getuid(), "env": dict(os.environ)}
for name in ("secret_file", "input_file"):
    try:
        with open(sys.argv[{"secret_file": 1, "input_file": 2}[name]], "rb") as f:
            found[name] = f.read().decode()
    except OSError as exc:
        found[name] = "refused: " + type(exc).__name__
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=3).close()
    found["connect"] = "connected"
except OSError as exc:
    found["connect"] = "refused: " + type(exc).__name__
status = open("/proc/self/status").read()
found["no_new_privs"] = [line for line in status.splitlines() if line.startswith("NoNewPrivs")]
found["cap_eff"] = [line for line in status.splitlines() if line.startswith("CapEff")]
print(json.dumps(found))
"""


class Listener:
    """A listening 127.0.0.1 port that counts the connections it accepts."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.close()


@pytest.fixture
def bwrap_on() -> Iterator[None]:
    """The sandbox as the service starts it by default; bubblewrap must work here."""
    assert sandbox.bwrap_problem() is None, sandbox.bwrap_problem()
    assert sandbox.configure("auto") == "bwrap"
    yield
    sandbox.configure("auto")


def probe(settings: Settings, tmp_path: Path, port: int, confine: bool) -> dict[str, object]:
    secret_file = settings.data_dir / "intake.env"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text(f"INTAKE_SESSION_SECRET={SECRET}\n", encoding="utf-8")
    scan = tmp_path / "inbox" / "scan.pdf"
    scan.parent.mkdir()
    scan.write_text("the one input file", encoding="utf-8")
    out = run_limited(
        [sys.executable, "-c", PROBE, str(secret_file), str(scan), str(port)],
        Limits(timeout=30, memory_mb=1024),
        confine=Confine(reads=(scan,)) if confine else None,
    )
    found: dict[str, object] = json.loads(out)
    return found


def test_a_confined_child_sees_no_secret_no_data_folder_and_no_network(
    settings: Settings,
    tmp_path: Path,
    listener: Listener,
    bwrap_on: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTAKE_SESSION_SECRET", SECRET)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", SECRET)

    found = probe(settings, tmp_path, listener.port, confine=True)

    env = found["env"]
    assert isinstance(env, dict)
    assert SECRET not in json.dumps(env)
    assert not {name for name in env if name.startswith(("INTAKE_", "TWILIO_"))} - {
        sandbox.INSIDE_MARK
    }
    assert str(found["secret_file"]).startswith("refused: ")
    assert found["input_file"] == "the one input file"
    assert str(found["connect"]).startswith("refused: ")
    assert listener.accepted == 0
    assert found["uid"] == 65534
    assert found["no_new_privs"] == ["NoNewPrivs:\t1"]
    assert found["cap_eff"] == ["CapEff:\t0000000000000000"]


def test_only_the_code_of_the_project_folder_is_there(settings: Settings, bwrap_on: None) -> None:
    # As in a fresh clone: the data folder, the venv and the code side by side.
    import normalizer

    project = Path(normalizer.__file__).resolve().parent.parent
    (settings.data_dir / "intake.env").parent.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "intake.env").write_text(f"SECRET={SECRET}\n", encoding="utf-8")
    listing = "import os, sys; print(chr(10).join(os.listdir(sys.argv[1])))"
    out = run_limited(
        [sys.executable, "-c", listing, str(project)],
        Limits(timeout=30, memory_mb=1024),
        confine=Confine(),
    )
    visible = set(out.decode().split())
    assert "normalizer" in visible
    assert not visible & {"var", "config", "gateway", "channels", "tests", ".env", "intake.env"}
    exists = "import os, sys; print(os.path.exists(sys.argv[1]))"
    out = run_limited(
        [sys.executable, "-c", exists, str(settings.data_dir.resolve())],
        Limits(timeout=30, memory_mb=1024),
        confine=Confine(),
    )
    assert out.strip() == b"False"


def test_without_confinement_the_child_still_gets_no_secret_from_the_environment(
    settings: Settings, tmp_path: Path, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_SESSION_SECRET", SECRET)
    sandbox.configure("none")
    try:
        found = probe(settings, tmp_path, listener.port, confine=True)
    finally:
        sandbox.configure("auto")
    assert SECRET not in json.dumps(found["env"])


def test_a_real_scan_is_checked_and_read_in_the_sandbox(tmp_path: Path, bwrap_on: None) -> None:
    data = scans.encode(scans.render_page(scans.FRENCH_LETTER, noise=0.0), "pdf")
    limits = ScanLimits(timeout=120)
    info = inspect_scan(data, "lettre.pdf", limits)
    path = tmp_path / "blobs" / "lettre.pdf"
    path.parent.mkdir()
    path.write_bytes(data)
    thumbnail = tmp_path / "thumbnail.png"
    result = run_ocr([ScanFile(path, info.kind, info.pages)], limits, thumbnail)
    assert "Casablanca" in result.text
    assert thumbnail.read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A PATH on which bubblewrap is not found, as on a host without the package."""
    empty = tmp_path / "no-bwrap"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    sandbox.bwrap_problem.cache_clear()
    yield
    monkeypatch.undo()
    sandbox.bwrap_problem.cache_clear()
    sandbox.configure("auto")


def test_sandbox_bwrap_refuses_to_start_without_bubblewrap(
    settings: Settings, no_bwrap: None
) -> None:
    with pytest.raises(ConfigError, match="INTAKE_SANDBOX"):
        build_services(settings.model_copy(update={"sandbox": "bwrap"}))


def test_sandbox_auto_without_bubblewrap_warns_and_keeps_the_limits(
    settings: Settings, no_bwrap: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="intake.ocr.sandbox"):
        assert configure_sandbox(settings.model_copy(update={"sandbox": "auto"})) == "none"
    assert "bubblewrap does not work here" in caplog.text
    with pytest.raises(sandbox.SandboxError) as caught:
        run_limited(
            [sys.executable, "-c", "bytearray(300 * 1024 * 1024)"],
            Limits(timeout=30, memory_mb=150),
            confine=Confine(),
        )
    assert caught.value.code == "memory"


def test_a_data_folder_inside_a_mounted_folder_is_covered_empty(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PATH folder (mounted read-only for its programs) that holds the data folder.
    tools = tmp_path / "tools"
    data_dir = tools / "var"
    data_dir.mkdir(parents=True)
    (data_dir / "intake.db").write_text(SECRET, encoding="utf-8")
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    assert configure_sandbox(settings.model_copy(update={"data_dir": data_dir})) == "bwrap"
    try:
        out = run_limited(
            [sys.executable, "-c", "import os, sys; print(os.listdir(sys.argv[1]))", str(data_dir)],
            Limits(timeout=30, memory_mb=1024),
            confine=Confine(),
        )
    finally:
        sandbox.configure("auto")
    assert out.strip() == b"[]"
